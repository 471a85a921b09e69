"""Test data: clustered blobs, linear-learner problems, and the same rows as CSV or RecordIO-protobuf
(written by the sagemaker SDK's own writers or by smlocal's encoder)."""
from __future__ import annotations

import io

import numpy as np


def blobs_with_labels(centers, n: int, *, seed: int, std: float) -> tuple[np.ndarray, np.ndarray]:
    """Clustered data: ``n`` float32 rows, each a randomly chosen row of ``centers`` plus normal noise of
    scale ``std``, and the index of the center each row came from."""
    rng = np.random.default_rng(seed)
    centers = np.asarray(centers, dtype=np.float64)
    which = rng.integers(0, len(centers), n)
    return (centers[which] + rng.normal(0, std, (n, centers.shape[1]))).astype(np.float32), which


def blobs(centers, n: int, *, seed: int, std: float) -> np.ndarray:
    """The rows of :func:`blobs_with_labels`."""
    return blobs_with_labels(centers, n, seed=seed, std=std)[0]


def linear_problem(kind: str, n: int, d: int = 5, seed: int = 0, noise: float = 1.0,
                   offset: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Linear learner data: raw features with large offsets and scales (so folding the scaler matters), labels
    from a linear rule; ``kind``: binary, multiclass (3 classes) or regression."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, d))
    X = (Z * np.linspace(0.5, 40.0, d) + offset * np.linspace(-100.0, 300.0, d)).astype(np.float32)
    w = np.array([1.5, -2.0, 1.0, 0.5, -1.0, 0.8, -0.3, 1.2][:d])
    if kind == "binary":
        y = (Z @ w + 0.3 * rng.normal(size=n) > 0.2).astype(np.float32)
    elif kind == "multiclass":
        y = np.digitize(Z @ w + 0.2 * rng.normal(size=n), [-1.0, 1.0]).astype(np.float32)
    else:
        y = (50.0 * (Z @ w) + 1000.0 + noise * rng.normal(size=n)).astype(np.float32)
    return X, y


def csv_bytes(X: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    """CSV rows ``[label,] features`` with every float written exactly (``repr``)."""
    rows = X if labels is None else np.column_stack([labels, X])
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows).encode()


def sdk_recordio(X: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    """RecordIO-protobuf of a dense array as the sagemaker SDK writes it (``write_numpy_to_dense_tensor``)."""
    from sagemaker.amazon.common import write_numpy_to_dense_tensor

    buf = io.BytesIO()
    write_numpy_to_dense_tensor(buf, X, labels)
    return buf.getvalue()


def sdk_sparse_recordio(X, labels: np.ndarray | None = None) -> bytes:
    """RecordIO-protobuf of a scipy sparse matrix as the sagemaker SDK writes it
    (``write_spmatrix_to_sparse_tensor``)."""
    from sagemaker.amazon.common import write_spmatrix_to_sparse_tensor

    buf = io.BytesIO()
    write_spmatrix_to_sparse_tensor(buf, X, labels)
    return buf.getvalue()


def random_dataset(n: int = 100, d: int = 3, seed: int = 0, labels: bool = True):
    """``n`` standard-normal float32 rows of ``d`` features and (``labels``) random 0/1 labels, else None."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.integers(0, 2, n).astype(np.float32) if labels else None
    return x, y


def recordio_of(x: np.ndarray, y: np.ndarray | None = None) -> bytes:
    """Dense RecordIO-protobuf by smlocal's own encoder."""
    from smlocal.data.protobuf import dense_to_records
    from smlocal.data.recordio import encode_records

    return encode_records(dense_to_records(x, y))


def recordio_record_size(d: int = 3) -> int:
    """Bytes of one framed labeled dense record of ``d`` features (all records of a dataset are equal)."""
    x, y = random_dataset(1, d=d)
    return len(recordio_of(x, y))


def zeros_tar_gz(path, name: str, size: int, piece: int = 1 << 20):
    """A real tar.gz holding one member of ``size`` zero bytes (a multiple of ``piece``), written in a
    moment: gzip allows concatenated members, so one compressed piece of zeros is repeated (1 GiB -> ~1 MB)."""
    import gzip
    import tarfile

    info = tarfile.TarInfo(name)
    info.size = size
    zeros = gzip.compress(bytes(piece), compresslevel=9)
    with open(path, "wb") as f:
        f.write(gzip.compress(info.tobuf(format=tarfile.PAX_FORMAT)))
        for _ in range(size // piece):
            f.write(zeros)
        f.write(gzip.compress(bytes(2 * tarfile.BLOCKSIZE)))  # the two end-of-archive blocks
    return path


def many_members_tar_gz(path, count: int):
    """A tar.gz of ``count`` empty files ``f00000`` ..."""
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for i in range(count):
            tar.addfile(tarfile.TarInfo(f"f{i:05d}"))
    return path
