"""The servable-model loader for ``/opt/ml/model``: the algorithm comes from the artifact itself.

Accepted layouts: ``model_algo-1`` (or any ``model_<host>``), or a ``model.tar.gz`` holding one. The
tarball is read member by member in memory (nothing is extracted to disk), and any member that could
escape a directory or is not a plain file (absolute path, ``..``, link, device, FIFO) is refused, and so
is one over the archive limits (``smlocal.archives``), which keep a compressed bomb out of memory.
"""
from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath
from typing import Union

from smlocal.artifacts.kmeans import KMeansModel, loads_kmeans
from smlocal.artifacts.linear_learner import LinearLearnerModel, loads_linear_learner
from smlocal.artifacts.mxnet_ndarray import LIST_MAGIC
from smlocal.archives import checked_members
from smlocal.errors import ModelLoadError

Model = Union[KMeansModel, LinearLearnerModel]
DEFAULT_MODEL_FILE = "model_algo-1"
TARBALL = "model.tar.gz"
ZIP_MAGIC = b"PK\x03\x04"
NDARRAY_MAGIC = LIST_MAGIC.to_bytes(8, "little")


def _is_model_name(name: str) -> bool:
    return name.startswith("model_") and len(name) > len("model_")


def _pick(names: list[str]) -> str | None:
    """``model_algo-1`` if present, else the first ``model_<host>`` in sorted order."""
    if DEFAULT_MODEL_FILE in names:
        return DEFAULT_MODEL_FILE
    hosts = sorted(n for n in names if _is_model_name(n))
    return hosts[0] if hosts else None


def load_model_bytes(data: bytes, source: str) -> Model:
    """Detect the algorithm from the bytes: a ZIP is linear learner, an NDArray list is k-means."""
    try:
        if data.startswith(ZIP_MAGIC):
            return loads_linear_learner(data)
        if data.startswith(NDARRAY_MAGIC):
            return loads_kmeans(data)
    except ValueError as exc:
        raise ModelLoadError(f"Cannot load the model file {source}: {exc}.") from None
    head = data[:8].hex() if data else "an empty file"
    raise ModelLoadError(
        f"Cannot load the model file {source}: it is neither a k-means model (MXNet NDArray list) nor a "
        f"linear-learner model (ZIP); it starts with {head}. Point serve at the model.tar.gz or "
        "model_algo-1 written by k-means or linear-learner training."
    )


def _load_tarball(tar_path: Path) -> Model:
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            members = [m for m, _ in checked_members(tar, str(tar_path), ModelLoadError)]
            files = {PurePosixPath(m.name).as_posix().removeprefix("./"): m for m in members if m.isfile()}
            chosen = _pick([n for n in files if "/" not in n])
            if chosen is None:
                raise ModelLoadError(
                    f"{tar_path} holds no model_algo-1 (or model_<host>) at its root; members: "
                    f"{sorted(files) or 'none'}."
                )
            extracted = tar.extractfile(files[chosen])
            data = extracted.read() if extracted is not None else b""
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ModelLoadError(f"Cannot read {tar_path}: {exc}. It must be a gzip-compressed tar.") from None
    return load_model_bytes(data, f"{tar_path}:{chosen}")


def load_model_dir(model_dir: Union[str, Path]) -> Model:
    """Load the model in ``model_dir`` (``/opt/ml/model``), raising ``ModelLoadError`` naming the file."""
    directory = Path(model_dir)
    if not directory.is_dir():
        raise ModelLoadError(f"Model directory {directory} does not exist. Put model_algo-1 or {TARBALL} there.")
    names = sorted(p.name for p in directory.iterdir())
    chosen = _pick(names)
    if chosen is not None:
        path = directory / chosen
        if not path.is_file():
            raise ModelLoadError(f"Model file {path} is not a regular file.")
        return load_model_bytes(path.read_bytes(), str(path))
    if TARBALL in names:
        return _load_tarball(directory / TARBALL)
    raise ModelLoadError(
        f"No model in {directory}: expected model_algo-1 (or model_<host>) or {TARBALL}; found "
        f"{names or 'nothing'}."
    )


def describe(model: Model) -> str:
    """One line for the server log."""
    if isinstance(model, KMeansModel):
        return f"k-means model: k={model.k}, feature_dim={model.feature_dim}"
    return (f"linear-learner model: {model.predictor_type}, feature_dim={model.feature_dim}, "
            f"outputs={model.weight.shape[1]}, loss={model.loss_type}, threshold={model.threshold}")
