"""Protobuf wire-format primitives for ``aialgs.data.Record``: varints and length-delimited fields.

Everything in a dense Record (map entries, ``Value`` and tensor messages, packed values) is a
length-delimited field, so these few helpers are all that the vectorised decoder and the byte-template
encoder need.
"""
from __future__ import annotations

import numpy as np

VALUES_KEY = "values"  # the map key of a Record's features and of its label
F4 = np.dtype("<f4")  # packed float values are little-endian on the wire
F8 = np.dtype("<f8")
VALUE_FIELD = {"float32_tensor": 2, "float64_tensor": 3, "int32_tensor": 7}  # ``Value``'s oneof field numbers


class NotCanonical(Exception):
    """The bytes are not the layout the reader expects (the caller falls back to the generated class)."""


def varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def ld_header(field: int, length: int) -> bytes:
    """Tag + length of a length-delimited field."""
    return varint_bytes(field << 3 | 2) + varint_bytes(length)


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise NotCanonical
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def ld_fields(buf: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(field number, value start, value end) of a message made only of length-delimited fields."""
    fields = []
    pos = start
    while pos < end:
        tag, pos = read_varint(buf, pos, end)
        if tag & 7 != 2:
            raise NotCanonical
        length, pos = read_varint(buf, pos, end)
        if pos + length > end:
            raise NotCanonical
        fields.append((tag >> 3, pos, pos + length))
        pos += length
    return fields
