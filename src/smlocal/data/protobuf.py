"""``aialgs.data.Record`` <-> numpy (spec §7.2, §7.3).

Decoding has two paths that give identical arrays:

* a vectorised fast path for blocks of equal-length records whose bytes are the canonical layout of a
  dense float32 feature row with an optional float32/float64 scalar label (what the SDK's
  ``write_numpy_to_dense_tensor`` and our encoder write). The layout is read once from the first
  record; every other record must match it byte for byte outside the value bytes, which is checked
  with numpy. Since protobuf parsing is a function of those bytes, all records then parse alike and
  the values can be viewed straight out of the ``(n, length)`` byte array.
* the generated ``record_pb2`` class for everything else (sparse, float64, int32, odd layouts).

Encoding dense float rows uses the same idea in reverse: one header template, values copied in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from google.protobuf.message import DecodeError

from smlocal.data import record_pb2
from smlocal.data.recordio import DataFormatError

VALUES_KEY = "values"
_F4 = np.dtype("<f4")
_F8 = np.dtype("<f8")
_TENSOR_FIELDS = {"float32_tensor": np.float32, "float64_tensor": np.float64, "int32_tensor": np.int32}
_VALUE_FIELD = {"float32_tensor": 2, "float64_tensor": 3, "int32_tensor": 7}


class RecordDecodeError(DataFormatError):
    """A record's protobuf is unusable. ``index`` is its position in the decoded list."""

    def __init__(self, index: int, detail: str):
        super().__init__(f"record #{index} {detail}")
        self.index = index
        self.detail = detail


# ------------------------------------------------------------------------------------ wire helpers
def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _ld_header(field: int, length: int) -> bytes:
    """Tag + length of a length-delimited field."""
    return _varint_bytes(field << 3 | 2) + _varint_bytes(length)


class _NotCanonical(Exception):
    pass


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _NotCanonical
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _ld_fields(buf: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(field number, value start, value end) of a message made only of length-delimited fields."""
    fields = []
    pos = start
    while pos < end:
        tag, pos = _read_varint(buf, pos, end)
        if tag & 7 != 2:
            raise _NotCanonical
        length, pos = _read_varint(buf, pos, end)
        if pos + length > end:
            raise _NotCanonical
        fields.append((tag >> 3, pos, pos + length))
        pos += length
    return fields


# ------------------------------------------------------------------------------------ fast path
@dataclass(frozen=True)
class DenseLayout:
    """Where the values sit in a canonical dense float32 record."""

    length: int
    feature_offset: int
    dim: int
    label_offset: int | None = None
    label_dtype: np.dtype | None = None

    def variable_spans(self) -> list[tuple[int, int]]:
        spans = [(self.feature_offset, self.feature_offset + 4 * self.dim)]
        if self.label_offset is not None:
            spans.append((self.label_offset, self.label_offset + self.label_dtype.itemsize))
        return sorted(spans)

    def fixed_spans(self) -> list[tuple[int, int]]:
        spans, pos = [], 0
        for start, stop in self.variable_spans():
            if start > pos:
                spans.append((pos, start))
            pos = stop
        if pos < self.length:
            spans.append((pos, self.length))
        return spans


def _single_tensor(buf: bytes, entry: tuple[int, int, int], value_fields: tuple[int, ...]) -> tuple[int, int, int]:
    """Map entry ``key="values"`` -> Value with one tensor holding only packed values -> (field, start, end)."""
    _, start, end = entry
    parts = _ld_fields(buf, start, end)
    if len(parts) != 2 or parts[0][0] != 1 or parts[1][0] != 2 or buf[parts[0][1] : parts[0][2]] != b"values":
        raise _NotCanonical
    value = _ld_fields(buf, parts[1][1], parts[1][2])
    if len(value) != 1 or value[0][0] not in value_fields:
        raise _NotCanonical
    tensor = _ld_fields(buf, value[0][1], value[0][2])
    if len(tensor) != 1 or tensor[0][0] != 1:
        raise _NotCanonical
    return value[0][0], tensor[0][1], tensor[0][2]


def dense_layout(payload: bytes) -> DenseLayout | None:
    """The layout of ``payload`` if it is a canonical dense float32 record, else None."""
    try:
        top = _ld_fields(payload, 0, len(payload))
        features = [f for f in top if f[0] == 1]
        labels = [f for f in top if f[0] == 2]
        if len(features) != 1 or len(labels) > 1 or len(features) + len(labels) != len(top):
            return None
        _, fstart, fend = _single_tensor(payload, features[0], (2,))
        if fend == fstart or (fend - fstart) % 4:
            return None
        layout = DenseLayout(len(payload), fstart, (fend - fstart) // 4)
        if labels:
            kind, lstart, lend = _single_tensor(payload, labels[0], (2, 3))
            dtype = _F4 if kind == 2 else _F8
            if lend - lstart != dtype.itemsize:
                return None
            layout = DenseLayout(layout.length, fstart, layout.dim, lstart, dtype)
        return layout
    except _NotCanonical:
        return None


def decode_fixed_block(block: np.ndarray, cast: bool = True) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Vectorised decode of a ``(n, length)`` uint8 array of records; None when it does not apply.

    Features are float32; labels float32, or their stored dtype (float32/float64) when not ``cast``.
    """
    n = block.shape[0]
    if n == 0:
        return None
    layout = dense_layout(block[0].tobytes())
    if layout is None or layout.length != block.shape[1]:
        return None
    template = block[0]
    for start, stop in layout.fixed_spans():
        if not (block[:, start:stop] == template[start:stop]).all():
            return None
    fo = layout.feature_offset
    raw = np.ascontiguousarray(block[:, fo : fo + 4 * layout.dim])
    features = raw.view(_F4).astype(np.float32, copy=False).reshape(n, layout.dim)
    labels = None
    if layout.label_offset is not None:
        lo, size = layout.label_offset, layout.label_dtype.itemsize
        raw_label = np.ascontiguousarray(block[:, lo : lo + size])
        labels = raw_label.view(layout.label_dtype).reshape(n)
        labels = labels.astype(np.float32 if cast else labels.dtype.newbyteorder("="))
    return features, labels


# ------------------------------------------------------------------------------------ general path
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
    dim = int(np.prod(shape, dtype=np.int64)) if shape else values.size
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


def records_to_arrays(payloads: Sequence[bytes]) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray | None]:
    """Records -> (float32 features (n, d) or CSR, float32 labels (n,) or None); fast path when it applies."""
    payloads = list(payloads)
    if len(payloads) > 1 and len(set(map(len, payloads))) == 1:
        block = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(len(payloads), -1)
        fast = decode_fixed_block(block)
        if fast is not None:
            return fast
    return decode_records(payloads, cast=True)


# ------------------------------------------------------------------------------------ encoding
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
    tensor_head = _ld_header(1, nbytes)
    tensor_len = len(tensor_head) + nbytes
    value_head = _ld_header(_VALUE_FIELD[kind], tensor_len)
    key_bytes = key.encode("utf-8")
    entry_head = _ld_header(1, len(key_bytes)) + key_bytes + _ld_header(2, len(value_head) + tensor_len)
    entry_len = len(entry_head) + len(value_head) + tensor_len
    return _ld_header(field, entry_len) + entry_head + value_head + tensor_head


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
    dtype = _F4 if kind == "float32_tensor" else _F8
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
