"""MXNet's NDArray-list file (``mx.nd.save`` / ``mx.nd.load``), read and written without MXNet.

Layout (little-endian; MXNet's ``MXNDArraySave`` and ``NDArray::Save``, and what the AWS built-ins'
``model_algo-1`` files hold byte for byte)::

    u64 0x112 | u64 0 | u64 N | N x NDArray | u64 M | M x (u64 len | name bytes)

    NDArray (V2) := u32 0xF993FAC9 | i32 stype (0 = dense) | u32 ndim | i64 dim[ndim]
                    | i32 dev_type | i32 dev_id | i32 type_flag | raw data

Writing produces exactly what ``mx.nd.save`` writes for dense CPU arrays (V2 magic, cpu(0)).
Reading also takes the older V1 (no stype) and legacy (u32 dims, no magic) array headers, which
MXNet still loads. A list is stored with M = 0 names; a dict with one name per array, in order.
"""
from __future__ import annotations

import io
import os
import struct
from pathlib import Path
from typing import BinaryIO, Mapping, Sequence, Union

import numpy as np

LIST_MAGIC = 0x112
NDARRAY_V1_MAGIC = 0xF993FAC8
NDARRAY_V2_MAGIC = 0xF993FAC9
DEV_CPU = 1

# mshadow type flags -> numpy dtypes (bfloat16, 12, has no numpy equivalent and is rejected).
_FLAG_TO_DTYPE = {
    0: np.dtype("<f4"),
    1: np.dtype("<f8"),
    2: np.dtype("<f2"),
    3: np.dtype("u1"),
    4: np.dtype("<i4"),
    5: np.dtype("i1"),
    6: np.dtype("<i8"),
    7: np.dtype("?"),
}
# keyed by (kind, itemsize) so that either byte order of the same type maps to its flag
_DTYPE_TO_FLAG = {(dt.kind, dt.itemsize): flag for flag, dt in _FLAG_TO_DTYPE.items()}

Arrays = Union[Sequence[np.ndarray], Mapping[str, np.ndarray]]


class NDArrayFormatError(ValueError):
    """The bytes are not an MXNet NDArray list (or use a feature this codec does not read)."""


def _type_flag(array: np.ndarray) -> int:
    try:
        return _DTYPE_TO_FLAG[(array.dtype.kind, array.dtype.itemsize)]
    except KeyError:
        raise ValueError(f"dtype {array.dtype} cannot be stored in an MXNet NDArray file") from None


def _encode_array(array: np.ndarray) -> bytes:
    array = np.asarray(array)
    if array.ndim == 0:
        # mx.nd has no 0-d arrays: ndim 0 means "none" to MXNet, so a scalar would be lost.
        raise ValueError("0-d arrays cannot be stored in an MXNet NDArray file; reshape to (1,)")
    flag = _type_flag(array)
    header = struct.pack("<IiI", NDARRAY_V2_MAGIC, 0, array.ndim)
    header += struct.pack(f"<{array.ndim}q", *array.shape)
    header += struct.pack("<iii", DEV_CPU, 0, flag)
    data = np.ascontiguousarray(array, dtype=_FLAG_TO_DTYPE[flag]).tobytes()
    return header + data


def dumps_ndarrays(arrays: Arrays) -> bytes:
    """The bytes ``mx.nd.save`` writes for ``arrays`` (a list, or a dict name -> array)."""
    if isinstance(arrays, Mapping):
        names = [str(k) for k in arrays.keys()]
        values = list(arrays.values())
    else:
        names, values = [], list(arrays)
    parts = [struct.pack("<QQQ", LIST_MAGIC, 0, len(values))]
    parts.extend(_encode_array(v) for v in values)
    parts.append(struct.pack("<Q", len(names)))
    for name in names:
        raw = name.encode("utf-8")
        parts.append(struct.pack("<Q", len(raw)) + raw)
    return b"".join(parts)


def save_ndarrays(target: Union[str, os.PathLike, BinaryIO], arrays: Arrays) -> None:
    """Write ``arrays`` to a path or a binary file object, in ``mx.nd.save``'s format.

    A path is written atomically (no partial file is ever left behind).
    """
    data = dumps_ndarrays(arrays)
    if isinstance(target, (str, os.PathLike)):
        from smlocal.artifacts.files import atomic_write_bytes

        atomic_write_bytes(Path(target), data)
    else:
        target.write(data)


class _Reader:
    def __init__(self, data: bytes):
        self.view = memoryview(data)
        self.pos = 0

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.view):
            raise NDArrayFormatError(
                f"truncated at byte {self.pos}: needed {n} bytes for {what}, {len(self.view) - self.pos} left"
            )
        chunk = self.view[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


def _decode_array(r: _Reader, index: int) -> np.ndarray:
    where = f"array {index}"
    (first,) = r.unpack("<I", f"{where} header")
    if first == NDARRAY_V2_MAGIC:
        (stype,) = r.unpack("<i", f"{where} storage type")
        if stype != 0:
            raise NDArrayFormatError(f"{where} is sparse (storage type {stype}); only dense arrays are supported")
    if first in (NDARRAY_V1_MAGIC, NDARRAY_V2_MAGIC):
        (ndim,) = r.unpack("<i", f"{where} ndim")
        if ndim < 0 or ndim > 32:
            raise NDArrayFormatError(f"{where} has an invalid number of dimensions ({ndim})")
        shape = r.unpack(f"<{ndim}q", f"{where} shape")
    else:  # legacy: the first word is ndim and dims are u32
        ndim = first
        if ndim > 32:
            raise NDArrayFormatError(f"{where}: unknown NDArray header 0x{first:08X}")
        shape = r.unpack(f"<{ndim}I", f"{where} shape")
    if ndim == 0:
        raise NDArrayFormatError(f"{where} is an empty (none) NDArray")
    if any(d < 0 for d in shape):
        raise NDArrayFormatError(f"{where} has a negative dimension {tuple(shape)}")
    dev_type, _dev_id = r.unpack("<ii", f"{where} context")
    (flag,) = r.unpack("<i", f"{where} dtype")
    dtype = _FLAG_TO_DTYPE.get(flag)
    if dtype is None:
        raise NDArrayFormatError(f"{where} has an unsupported dtype flag {flag}")
    count = int(np.prod(shape, dtype=np.int64))
    raw = r.take(count * dtype.itemsize, f"{where} data {tuple(shape)}")
    # copy: the result must own writable memory, independent of the input buffer
    return np.frombuffer(raw, dtype=dtype, count=count).astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def loads_ndarrays(data: bytes) -> Union[list, dict]:
    """Parse ``mx.nd.save`` bytes: a list of arrays, or a dict name -> array (stored order kept)."""
    r = _Reader(bytes(data))
    magic, _reserved = r.unpack("<QQ", "the file header")
    if magic != LIST_MAGIC:
        raise NDArrayFormatError(f"not an MXNet NDArray file (magic 0x{magic:X}, expected 0x{LIST_MAGIC:X})")
    (count,) = r.unpack("<Q", "the array count")
    if count > len(data):
        raise NDArrayFormatError(f"implausible array count {count}")
    arrays = [_decode_array(r, i) for i in range(count)]
    (num_names,) = r.unpack("<Q", "the name count")
    if num_names not in (0, count):
        raise NDArrayFormatError(f"{num_names} names for {count} arrays")
    names = []
    for i in range(num_names):
        (length,) = r.unpack("<Q", f"name {i} length")
        raw = r.take(length, f"name {i}")
        try:
            names.append(bytes(raw).decode("utf-8"))
        except UnicodeDecodeError:
            raise NDArrayFormatError(f"name {i} is not UTF-8") from None
    if r.pos != len(r.view):
        raise NDArrayFormatError(f"{len(r.view) - r.pos} unexpected bytes after the name list")
    if num_names:
        if len(set(names)) != len(names):
            raise NDArrayFormatError("duplicate array names")
        return dict(zip(names, arrays, strict=False))
    return arrays


def load_ndarrays(source: Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]) -> Union[list, dict]:
    """Read an NDArray list from a path, bytes, or a binary file object (like ``mx.nd.load``)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return loads_ndarrays(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        return loads_ndarrays(Path(source).read_bytes())
    if isinstance(source, io.IOBase) or hasattr(source, "read"):
        return loads_ndarrays(source.read())
    raise TypeError(f"cannot read NDArrays from {type(source).__name__}")
