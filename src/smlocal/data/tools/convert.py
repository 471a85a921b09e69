"""``smlocal convert``: CSV / ``.npy`` / dense or sparse ``.npz`` <-> RecordIO-protobuf files.

The built-ins leave "training data serialization" to the user; this does it without the SDK:
CSV / ``.npy`` / dense or sparse ``.npz`` -> RecordIO-protobuf (float32, what both algorithms train
on), and RecordIO-protobuf -> CSV (label first). Everything streams in chunks, so files larger than
memory convert, and the output appears only when it is complete.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np
import scipy.sparse as sp

from smlocal.data.channels import first_nonfinite_cell
from smlocal.data.csv import NAN_MESSAGE, MissingValueError, iter_csv_blocks, nonfinite_message
from smlocal.data.protobuf import (
    RecordDecodeError,
    decode_fixed_block,
    decode_records,
    dense_to_records,
    sparse_to_records,
)
from smlocal.data.recordio import (
    DataFormatError,
    FixedRun,
    encode_records,
    is_recordio_file,
    iter_frames,
    read_chunks,
)
from smlocal.errors import CustomerError

ROWS_PER_CHUNK = 65536
CSV_ROWS_PER_WRITE = 8192  # bounds the temporary text array
RECORDIO_SUFFIX = ".recordio"


@dataclass
class ConvertResult:
    source: str
    output: str
    direction: str  # "to-recordio" | "to-csv"
    rows: int = 0
    feature_dim: int | None = None
    sparse: bool = False
    labeled: bool = False

    def summary(self) -> str:
        kind = "sparse" if self.sparse else "dense"
        label = "with labels" if self.labeled else "without labels"
        return (f"wrote {self.rows} rows ({kind}, {self.feature_dim} features, {label}) "
                f"from {self.source} to {self.output}")


def _split_label(matrix, label_column: int | None, source: str):
    """(features, labels) taking column ``label_column`` out of a dense or CSR matrix."""
    if label_column is None:
        return matrix, None
    ncols = matrix.shape[1]
    col = label_column if label_column >= 0 else ncols + label_column
    if not 0 <= col < ncols:
        raise CustomerError(f"--label-column {label_column} is out of range: {source} has {ncols} columns.")
    keep = [c for c in range(ncols) if c != col]
    if sp.issparse(matrix):
        labels = np.asarray(matrix[:, col].todense()).ravel()
        return matrix[:, keep].tocsr(), labels
    return np.ascontiguousarray(matrix[:, keep]), np.asarray(matrix[:, col])


def _check_finite(features, labels, where: Callable[[int, int | None, bool], str]) -> None:
    """CustomerError at the first NaN or infinite value; ``where(row, column or None for the label,
    is_nan)`` words its place."""
    bad = first_nonfinite_cell(features, labels)
    if bad is not None:
        row, column, value = bad
        raise CustomerError(f"{where(row, column, bool(np.isnan(value)))}: {nonfinite_message(value)}")


def _array_place(prefix: str, start: int) -> Callable[[int, int | None, bool], str]:
    """Rows and columns of an in-memory or ``.npy`` array, 0-based as numpy counts them."""
    return lambda row, column, is_nan: f"{prefix}row {start + row}" + (
        "" if is_nan else (" label" if column is None else f" column {column}"))


def _csv_matrices(path: Path) -> Iterator[tuple[np.ndarray, Callable]]:
    with open(path, "rb") as f:
        try:
            for block in iter_csv_blocks(f, str(path)):
                yield block.values, _csv_where(block)
        except MissingValueError as exc:
            raise CustomerError(f"{path} line {exc.line} column {exc.column} is empty: {NAN_MESSAGE}") from None
        except DataFormatError as exc:
            raise CustomerError(f"Cannot convert {path}: {exc}") from None


def _csv_where(block) -> Callable[[int, int | None, bool], str]:
    """The file's line (and, for an infinite value, its 1-based column) of a row of ``block``."""
    return lambda row, column, is_nan: f"{block.source} line {int(block.lines[row])}" + (
        "" if is_nan else f" column {column + 1}")


def _npy_matrices(path: Path) -> Iterator[tuple[np.ndarray | sp.csr_matrix, Callable]]:
    if path.suffix == ".npy":
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        yield from _row_chunks(_as_matrix(array, path), path)
        return
    with np.load(path, allow_pickle=False) as npz:
        keys = set(npz.files)
        if {"format", "shape", "data", "indices", "indptr"} <= keys:  # scipy.sparse.save_npz
            yield from _row_chunks(sp.load_npz(path).tocsr(), path)
        elif len(keys) == 1:
            yield from _row_chunks(_as_matrix(npz[next(iter(keys))], path), path)
        else:
            raise CustomerError(
                f"{path} holds arrays {sorted(keys)}: save one 2-D array (np.savez(f, data)) or a scipy.sparse "
                "matrix (scipy.sparse.save_npz), or a features/labels pair via convert_arrays()."
            )


def _as_matrix(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.dtype.kind not in "biuf":
        raise CustomerError(f"{path}: expected a 2-D numeric array, got shape {array.shape} dtype {array.dtype}.")
    return array


def _row_chunks(matrix, path: Path):
    for start in range(0, matrix.shape[0], ROWS_PER_CHUNK):
        stop = min(start + ROWS_PER_CHUNK, matrix.shape[0])
        # float32 before the check: a float64 value beyond float32's range is an infinite value here
        yield matrix[start:stop].astype(np.float32), _array_place(f"{path} ", start)


def _write_recordio(out: BinaryIO, features, labels, result: ConvertResult) -> None:
    features = features.astype(np.float32) if sp.issparse(features) else np.asarray(features, dtype=np.float32)
    labels = None if labels is None else np.asarray(labels, dtype=np.float32)
    if result.feature_dim is None:
        result.feature_dim = features.shape[1]
    elif features.shape[1] != result.feature_dim:
        raise CustomerError(f"{result.source}: rows have {features.shape[1]} features, earlier rows "
                            f"{result.feature_dim}.")
    encode = sparse_to_records if sp.issparse(features) else dense_to_records
    out.write(encode_records(encode(features, labels)))
    result.rows += features.shape[0]
    result.sparse = sp.issparse(features)
    result.labeled = labels is not None


def convert_arrays(features, labels, output) -> ConvertResult:
    """In-memory features (dense or scipy.sparse) and labels -> a float32 RecordIO-protobuf file."""
    result = ConvertResult("<arrays>", str(output), "to-recordio")
    with _atomic_output(Path(output), "wb") as out:
        matrix = sp.csr_matrix(features) if sp.issparse(features) else np.asarray(features)
        for start in range(0, matrix.shape[0], ROWS_PER_CHUNK):
            part = matrix[start : start + ROWS_PER_CHUNK].astype(np.float32)
            lab = None if labels is None else np.asarray(labels)[start : start + ROWS_PER_CHUNK].astype(np.float32)
            _check_finite(part, lab, _array_place("", start))
            _write_recordio(out, part, lab, result)
    return result


@contextmanager
def _atomic_output(dst: Path, mode: str):
    """Write to a hidden temp file beside ``dst`` and rename it at the end: no partial output on error."""
    tmp = dst.with_name(f".{dst.name}.partial")
    try:
        with open(tmp, mode, **({"encoding": "ascii", "newline": "\n"} if "b" not in mode else {})) as out:
            yield out
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def _to_csv(src: Path, dst: Path) -> ConvertResult:
    result = ConvertResult(str(src), str(dst), "to-csv")
    with open(src, "rb") as f, _atomic_output(dst, "w") as out:
        try:
            for frames in iter_frames(read_chunks(f), source=str(src)):
                features, labels = _decode_native(frames)
                _write_csv_rows(out, features, labels, result)
        except DataFormatError as exc:
            raise CustomerError(f"Cannot convert {src}: {exc}") from None
    return result


def _decode_native(frames):
    if isinstance(frames, FixedRun):
        fast = decode_fixed_block(frames.payloads, cast=False)
        if fast is not None:
            return fast
    try:
        return decode_records(frames.to_bytes(), cast=False)
    except RecordDecodeError as exc:
        raise DataFormatError(f"the record at byte offset {frames.record_offset(exc.index)} {exc.detail}") from None


def _write_csv_rows(out, features, labels, result: ConvertResult) -> None:
    """Rows as text, label first. numpy's str() of a float is the shortest text that reads back to the
    same value in its own dtype, so float32 data round-trips exactly without 9-digit noise."""
    result.sparse = result.sparse or sp.issparse(features)
    result.feature_dim = features.shape[1]
    result.labeled = labels is not None
    for start in range(0, features.shape[0], CSV_ROWS_PER_WRITE):
        part = features[start : start + CSV_ROWS_PER_WRITE]
        text = (np.asarray(part.todense()) if sp.issparse(part) else part).astype(str)
        if labels is not None:
            text = np.hstack([labels[start : start + CSV_ROWS_PER_WRITE].astype(str).reshape(-1, 1), text])
        out.write("".join(",".join(row) + "\n" for row in text.tolist()))
    result.rows += features.shape[0]


def convert(src, dst=None, label_column: int | None = 0) -> ConvertResult:
    """Convert ``src`` by its kind: RecordIO-protobuf -> CSV; CSV, .npy, .npz -> RecordIO-protobuf.

    ``label_column``: which input column is the label (default 0, the first); None for no label.
    """
    src = Path(src)
    if not src.is_file():
        raise CustomerError(f"{src} is not a file.")
    recordio = is_recordio_file(src)
    dst = Path(dst) if dst else src.with_suffix(".csv" if recordio else RECORDIO_SUFFIX)
    if dst.resolve() == src.resolve():
        raise CustomerError(f"The output {dst} would overwrite the input; pass --output.")
    if recordio:
        return _to_csv(src, dst)
    matrices = _npy_matrices(src) if src.suffix in (".npy", ".npz") else _csv_matrices(src)
    result = ConvertResult(str(src), str(dst), "to-recordio")
    with _atomic_output(dst, "wb") as out:
        for matrix, where in matrices:
            _check_finite(matrix, None, where)  # before the label is split off: the input's own columns
            features, labels = _split_label(matrix, label_column, str(src))
            _write_recordio(out, features, labels, result)
    return result
