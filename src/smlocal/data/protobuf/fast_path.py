"""The vectorised Record decoder: a block of equal-length canonical dense float32 records -> numpy.

The layout is read once from the first record; every other record must match it byte for byte outside
the value bytes, which is checked with numpy. Since protobuf parsing is a function of those bytes, all
records then parse alike and the values can be viewed straight out of the ``(n, length)`` byte array.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smlocal.data.protobuf.wire import F4, F8, NotCanonical, ld_fields


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
    parts = ld_fields(buf, start, end)
    if len(parts) != 2 or parts[0][0] != 1 or parts[1][0] != 2 or buf[parts[0][1] : parts[0][2]] != b"values":
        raise NotCanonical
    value = ld_fields(buf, parts[1][1], parts[1][2])
    if len(value) != 1 or value[0][0] not in value_fields:
        raise NotCanonical
    tensor = ld_fields(buf, value[0][1], value[0][2])
    if len(tensor) != 1 or tensor[0][0] != 1:
        raise NotCanonical
    return value[0][0], tensor[0][1], tensor[0][2]


def dense_layout(payload: bytes) -> DenseLayout | None:
    """The layout of ``payload`` if it is a canonical dense float32 record, else None."""
    try:
        top = ld_fields(payload, 0, len(payload))
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
            dtype = F4 if kind == 2 else F8
            if lend - lstart != dtype.itemsize:
                return None
            layout = DenseLayout(layout.length, fstart, layout.dim, lstart, dtype)
        return layout
    except NotCanonical:
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
    features = raw.view(F4).astype(np.float32, copy=False).reshape(n, layout.dim)
    labels = None
    if layout.label_offset is not None:
        lo, size = layout.label_offset, layout.label_dtype.itemsize
        raw_label = np.ascontiguousarray(block[:, lo : lo + size])
        labels = raw_label.view(layout.label_dtype).reshape(n)
        labels = labels.astype(np.float32 if cast else labels.dtype.newbyteorder("="))
    return features, labels
