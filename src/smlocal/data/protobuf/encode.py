"""numpy -> serialised ``aialgs.data.Record``s: dense and sparse rows, and inference responses.

Dense float rows use the fast path's idea in reverse: one header template per block, values copied in,
no protobuf call per record. Integer and sparse rows go through the generated class.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import scipy.sparse as sp

from smlocal.data import record_pb2
from smlocal.data.protobuf.wire import F4, F8, VALUE_FIELD, VALUES_KEY, ld_header


def _kind_for(dtype: np.dtype) -> str:
    if dtype == np.float32 or dtype == np.float16:
        return "float32_tensor"
    if dtype == np.float64:
        return "float64_tensor"
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        return "int32_tensor"
    raise ValueError(f"cannot encode dtype {dtype} in a Record (use float32, float64 or integers)")


def _as_int32(values: np.ndarray) -> np.ndarray:
    if values.size and (values.min() < np.iinfo(np.int32).min or values.max() > np.iinfo(np.int32).max):
        raise ValueError("integer values do not fit in an int32_tensor; convert them to float32")
    return values.astype(np.int32)


def _entry_template(field: int, key: str, kind: str, nbytes: int) -> bytes:
    """Bytes of a map entry ``key -> Value{kind: {values: <nbytes>}}`` up to the values themselves."""
    tensor_head = ld_header(1, nbytes)
    tensor_len = len(tensor_head) + nbytes
    value_head = ld_header(VALUE_FIELD[kind], tensor_len)
    key_bytes = key.encode("utf-8")
    entry_head = ld_header(1, len(key_bytes)) + key_bytes + ld_header(2, len(value_head) + tensor_len)
    entry_len = len(entry_head) + len(value_head) + tensor_len
    return ld_header(field, entry_len) + entry_head + value_head + tensor_head


def _fill(parts: list[bytes | np.ndarray], n: int) -> list[bytes]:
    """Concatenate constant byte strings and per-row ``(n, w)`` uint8 arrays into n payloads."""
    width = sum(len(p) if isinstance(p, bytes) else p.shape[1] for p in parts)
    out = np.empty((n, width), dtype=np.uint8)
    pos = 0
    for part in parts:
        if isinstance(part, bytes):
            out[:, pos : pos + len(part)] = np.frombuffer(part, dtype=np.uint8)
            pos += len(part)
        else:
            out[:, pos : pos + part.shape[1]] = part
            pos += part.shape[1]
    data = out.tobytes()
    return [data[i : i + width] for i in range(0, n * width, width)]


def _float_bytes(values: np.ndarray, kind: str) -> np.ndarray:
    dtype = F4 if kind == "float32_tensor" else F8
    arr = np.ascontiguousarray(values, dtype=dtype)
    return arr.view(np.uint8).reshape(arr.shape[0], -1)


def _check_labels(labels, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    return labels


def _set_tensor(value: record_pb2.Value, kind: str, values, keys=None, shape=None) -> None:
    tensor = getattr(value, kind)
    tensor.values.extend(values.tolist())
    if keys is not None:
        tensor.keys.extend(keys.tolist())
    if shape is not None:
        tensor.shape.extend(shape)
    if not tensor.values and keys is None and shape is None:
        value.SetInParent()
        tensor.SetInParent()


def dense_to_records(features, labels=None) -> list[bytes]:
    """One serialised Record per row, as the SDK's ``write_numpy_to_dense_tensor`` writes it.

    float32 -> Float32Tensor, float64 -> Float64Tensor, integers -> Int32Tensor (per the dtype, like the
    SDK); a 1-D array is one row. Float rows are built from a byte template, without protobuf calls.
    """
    features = np.asarray(features)
    if features.ndim == 1:
        features = features.reshape(1, -1)
    if features.ndim != 2:
        raise ValueError(f"features must be 2-D, got shape {features.shape}")
    n, dim = features.shape
    labels = _check_labels(labels, n)
    fkind = _kind_for(features.dtype)
    lkind = _kind_for(labels.dtype) if labels is not None else None
    if n == 0:
        return []
    if dim and fkind != "int32_tensor" and lkind != "int32_tensor":
        fbytes = _float_bytes(features, fkind)
        parts: list[bytes | np.ndarray] = [_entry_template(1, VALUES_KEY, fkind, fbytes.shape[1]), fbytes]
        if labels is not None:
            lbytes = _float_bytes(labels.reshape(n, 1), lkind)
            parts += [_entry_template(2, VALUES_KEY, lkind, lbytes.shape[1]), lbytes]
        return _fill(parts, n)
    if fkind == "int32_tensor":
        features = _as_int32(features)
    if lkind == "int32_tensor":
        labels = _as_int32(labels)
    out = []
    record = record_pb2.Record()
    for i in range(n):
        record.Clear()
        _set_tensor(record.features[VALUES_KEY], fkind, features[i])
        if labels is not None:
            _set_tensor(record.label[VALUES_KEY], lkind, labels[i : i + 1])
        out.append(record.SerializeToString())
    return out


def sparse_to_records(csr, labels=None) -> list[bytes]:
    """One Record per row with ``values``, ``keys`` (column indices) and ``shape=[n_cols]`` (SDK layout)."""
    csr = sp.csr_matrix(csr)
    n, dim = csr.shape
    labels = _check_labels(labels, n)
    fkind = _kind_for(csr.dtype)
    lkind = _kind_for(labels.dtype) if labels is not None else None
    data = _as_int32(csr.data) if fkind == "int32_tensor" else csr.data
    if lkind == "int32_tensor":
        labels = _as_int32(labels)
    indices = csr.indices.astype(np.uint64)
    out = []
    record = record_pb2.Record()
    for i in range(n):
        record.Clear()
        lo, hi = csr.indptr[i], csr.indptr[i + 1]
        _set_tensor(record.features[VALUES_KEY], fkind, data[lo:hi], indices[lo:hi], [dim])
        if labels is not None:
            _set_tensor(record.label[VALUES_KEY], lkind, labels[i : i + 1])
        out.append(record.SerializeToString())
    return out


def label_records(columns: Mapping[str, np.ndarray]) -> list[bytes]:
    """One Record per row whose ``label`` map holds a float32 tensor per column (inference responses).

    ``{"closest_cluster": a, "distance_to_cluster": b}`` -> records with those two label entries, in
    that order. A 2-D column gives a vector per row.
    """
    if not columns:
        raise ValueError("label_records needs at least one column")
    arrays = {}
    n = None
    for name, col in columns.items():
        arr = np.asarray(col, dtype=np.float32)
        arr = arr.reshape(-1, 1) if arr.ndim == 1 else arr
        if arr.ndim != 2:
            raise ValueError(f"column '{name}' must be 1-D or 2-D, got shape {arr.shape}")
        if n is not None and arr.shape[0] != n:
            raise ValueError(f"column '{name}' has {arr.shape[0]} rows, expected {n}")
        n = arr.shape[0]
        arrays[name] = arr
    if n == 0:
        return []
    parts: list[bytes | np.ndarray] = []
    for name, arr in arrays.items():
        if arr.shape[1] == 0:
            raise ValueError(f"column '{name}' has no values per row")
        raw = _float_bytes(arr, "float32_tensor")
        parts += [_entry_template(2, name, "float32_tensor", raw.shape[1]), raw]
    return _fill(parts, n)
