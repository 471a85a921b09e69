"""The Record decoder for every layout: the generated ``record_pb2`` class, with a typed error per bad record.

It takes what the fast path cannot (sparse, float64, int32, odd layouts) and keeps each record's
native dtype unless asked to cast.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from google.protobuf.message import DecodeError

from smlocal.data import record_pb2
from smlocal.data.protobuf.wire import VALUES_KEY
from smlocal.data.recordio import DataFormatError

_MAX_DIM = np.iinfo(np.int64).max  # feature indices are int64
_TENSOR_FIELDS = {"float32_tensor": np.float32, "float64_tensor": np.float64, "int32_tensor": np.int32}


class RecordDecodeError(DataFormatError):
    """A record's protobuf is unusable. ``index`` is its position in the decoded list."""

    def __init__(self, index: int, detail: str):
        super().__init__(f"record #{index} {detail}")
        self.index = index
        self.detail = detail


def _tensor(value: record_pb2.Value, index: int, what: str):
    kind = value.WhichOneof("value")
    if kind not in _TENSOR_FIELDS:
        raise RecordDecodeError(
            index,
            f"holds a '{kind or 'empty'}' value in {what}; expected float32_tensor, float64_tensor or int32_tensor.",
        )
    return kind, getattr(value, kind)


@dataclass
class _Row:
    values: np.ndarray
    keys: np.ndarray | None  # None = dense
    dim: int


def _feature_row(record: record_pb2.Record, index: int) -> _Row:
    if VALUES_KEY not in record.features:
        raise RecordDecodeError(index, "has no features['values'] tensor (every record needs its features there).")
    kind, tensor = _tensor(record.features[VALUES_KEY], index, "features['values']")
    values = np.array(tensor.values, dtype=_TENSOR_FIELDS[kind])
    shape = list(tensor.shape)
    dim = math.prod(shape) if shape else values.size  # Python ints: a uint64 shape must not wrap around
    if dim > _MAX_DIM:
        raise RecordDecodeError(index, f"has shape {shape}: {dim} features is more than 2^63-1.")
    if len(tensor.keys) or (shape and values.size != dim):  # sparse (an all-zero sparse row has no keys)
        if not shape:
            raise RecordDecodeError(index, "is sparse (has keys) but has no shape; sparse tensors need a shape.")
        keys = np.array(tensor.keys, dtype=np.uint64)
        if keys.size != values.size:
            raise RecordDecodeError(index, f"has {keys.size} keys but {values.size} values.")
        if keys.size and int(keys.max()) >= dim:
            raise RecordDecodeError(index, f"has key {int(keys.max())} outside its shape {shape}.")
        return _Row(values, keys.astype(np.int64), dim)
    return _Row(values, None, dim)


def _label(record: record_pb2.Record, index: int):
    if VALUES_KEY not in record.label:
        return None
    kind, tensor = _tensor(record.label[VALUES_KEY], index, "label['values']")
    if len(tensor.values) != 1 or len(tensor.keys):
        raise RecordDecodeError(index, f"has {len(tensor.values)} values in label['values']; expected exactly one.")
    return np.array(tensor.values, dtype=_TENSOR_FIELDS[kind])


def _parse(payload: bytes, index: int) -> record_pb2.Record:
    try:
        return record_pb2.Record.FromString(payload)
    except DecodeError as exc:
        raise RecordDecodeError(index, f"is not a valid aialgs.data.Record protobuf ({exc}).") from None


def decode_records(payloads: Sequence[bytes], cast: bool = False) -> tuple[np.ndarray | sp.csr_matrix,
                                                                          np.ndarray | None]:
    """Decode with the generated class. Native dtypes unless ``cast`` (then float32 everywhere).

    Features: ``(n, d)`` ndarray, or CSR if any record is sparse. Labels: ``(n,)`` or None.
    """
    rows, labels = [], []
    dim = None
    for index, payload in enumerate(payloads):
        record = _parse(payload, index)
        row = _feature_row(record, index)
        if dim is None:
            dim = row.dim
        elif row.dim != dim:
            raise RecordDecodeError(index, f"has {row.dim} features but the records before it have {dim}.")
        rows.append(row)
        labels.append(_label(record, index))
    have = [lab is not None for lab in labels]
    if any(have) and not all(have):
        index = have.index(not have[0])
        raise RecordDecodeError(index, "mixes labeled and unlabeled records; label every record or none.")
    label_array = None
    if rows and all(have):
        label_array = np.concatenate(labels)
        if cast:
            label_array = label_array.astype(np.float32)
    return _stack(rows, dim or 0, cast), label_array


def _stack(rows: list[_Row], dim: int, cast: bool):
    dtype = np.float32 if cast else (np.result_type(*[r.values.dtype for r in rows]) if rows else np.float32)
    if all(r.keys is None for r in rows):
        out = np.empty((len(rows), dim), dtype=dtype)
        for i, r in enumerate(rows):
            out[i] = r.values
        return out
    lengths = np.fromiter((r.values.size for r in rows), dtype=np.int64, count=len(rows))
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.concatenate([r.keys if r.keys is not None else np.arange(dim, dtype=np.int64) for r in rows])
    data = np.concatenate([r.values for r in rows]).astype(dtype, copy=False)
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), dim))
