"""Mutations of valid inputs: bit flips, truncations, insertions, deletions and length-field edits."""
from __future__ import annotations

import struct

from hypothesis import strategies as st

# u32 values that matter to length and flag fields: zero, one, around the RecordIO limit and its flags
_INTERESTING_U32 = (0, 1, 3, 4, 7, 8, 0x7F, 0x80, 0xFFFF, (1 << 29) - 1, 1 << 29, 2 << 29, 3 << 29,
                    (3 << 29) | 4, 0xCED7230A, 0xFFFFFFFF)
_INTERESTING_BYTE = (0x00, 0x01, 0x02, 0x0A, 0x7F, 0x80, 0xFF)


def _flip(draw, data: bytearray) -> None:
    pos = draw(st.integers(0, len(data) - 1))
    data[pos] ^= 1 << draw(st.integers(0, 7))


def _set_byte(draw, data: bytearray) -> None:  # a varint length or a tag in protobuf, a digit in text
    pos = draw(st.integers(0, len(data) - 1))
    data[pos] = draw(st.sampled_from(_INTERESTING_BYTE) | st.integers(0, 255))


def _length_edit(draw, data: bytearray) -> None:  # a RecordIO header word (lrec at offset 4 mod 4)
    if len(data) < 4:
        return
    pos = draw(st.integers(0, (len(data) - 4) // 4)) * 4
    word = draw(st.sampled_from(_INTERESTING_U32) | st.integers(0, 0xFFFFFFFF))
    data[pos : pos + 4] = struct.pack("<I", word)


def _truncate(draw, data: bytearray) -> None:
    del data[draw(st.integers(0, len(data) - 1)) :]


def _insert(draw, data: bytearray) -> None:
    pos = draw(st.integers(0, len(data)))
    data[pos:pos] = draw(st.binary(min_size=1, max_size=16))


def _delete(draw, data: bytearray) -> None:
    start = draw(st.integers(0, len(data) - 1))
    del data[start : start + draw(st.integers(1, 16))]


def _duplicate(draw, data: bytearray) -> None:  # a repeated field, a record or a line twice
    start = draw(st.integers(0, len(data) - 1))
    piece = data[start : start + draw(st.integers(1, 64))]
    pos = draw(st.integers(0, len(data)))
    data[pos:pos] = piece


_MUTATIONS = (_flip, _set_byte, _length_edit, _truncate, _insert, _delete, _duplicate)


@st.composite
def mutated(draw, valid: st.SearchStrategy[bytes], max_mutations: int = 4) -> bytes:
    """A valid input from ``valid`` with 1..``max_mutations`` mutations applied."""
    data = bytearray(draw(valid))
    for _ in range(draw(st.integers(1, max_mutations))):
        if not data:
            data.extend(draw(st.binary(min_size=1, max_size=16)))
            continue
        draw(st.sampled_from(_MUTATIONS))(draw, data)
    return bytes(data)


def fuzzed(valid: st.SearchStrategy[bytes], max_size: int = 512) -> st.SearchStrategy[bytes]:
    """Valid inputs, mutations of them and arbitrary bytes, in one strategy."""
    return st.one_of(valid, mutated(valid), st.binary(max_size=max_size))


def chunk_cuts(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """``data`` cut into consecutive chunks at drawn offsets (how a stream may arrive)."""
    return st.lists(st.integers(0, len(data)), max_size=6).map(
        lambda cuts: [data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)])]
    )
