"""RecordIO framing: layout, padding, dmlc continuation parts, vectorised runs, errors with offsets."""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from smlocal.data.recordio import (
    MAGIC,
    MAGIC_BYTES,
    DataFormatError,
    FixedRun,
    FrameScanner,
    VarRecords,
    encode_block,
    encode_records,
    frame,
    iter_frames,
    iter_records,
    write_record,
)
from smlocal.errors import CustomerError


def header(cflag: int, length: int) -> bytes:
    return struct.pack("<II", MAGIC, (cflag << 29) | length)


def scan_in_pieces(data: bytes, size: int) -> list[bytes]:
    """Feed ``data`` in ``size``-byte chunks, as short pipe reads would."""
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    out = []
    for frames in iter_frames(chunks, source="pieces"):
        out += frames.to_bytes()
    return out


def test_layout_and_padding_by_hand():
    assert frame(b"abcde") == header(0, 5) + b"abcde" + b"\0\0\0"
    assert frame(b"abcd") == header(0, 4) + b"abcd"
    assert frame(b"") == header(0, 0)
    buf = io.BytesIO()
    write_record(buf, b"xy")
    assert buf.getvalue() == header(0, 2) + b"xy\0\0"


@pytest.mark.parametrize("length", range(0, 13))
def test_round_trip_every_padding(length):
    payloads = [bytes(range(length)), b"z" * (length + 1), b""]
    data = encode_records(payloads)
    assert len(data) % 4 == 0
    assert list(iter_records(io.BytesIO(data), source="mem")) == payloads


def test_aligned_magic_is_split_like_dmlc():
    # magic at payload offsets 4 and 12: parts "abcd" (flag 1), "efgh" (flag 2), "xy" (flag 3, padded)
    payload = b"abcd" + MAGIC_BYTES + b"efgh" + MAGIC_BYTES + b"xy"
    expected = header(1, 4) + b"abcd" + header(2, 4) + b"efgh" + header(3, 2) + b"xy\0\0"
    assert frame(payload) == expected
    assert list(iter_records(io.BytesIO(expected))) == [payload]


def test_magic_at_edges_and_back_to_back():
    cases = [MAGIC_BYTES, MAGIC_BYTES * 2, b"abcd" + MAGIC_BYTES, MAGIC_BYTES + b"tail1"]
    assert frame(MAGIC_BYTES) == header(1, 0) + header(3, 0)
    assert frame(MAGIC_BYTES * 2) == header(1, 0) + header(2, 0) + header(3, 0)
    data = encode_records(cases)
    assert list(iter_records(io.BytesIO(data))) == cases


def test_unaligned_magic_is_not_split():
    payload = b"a" + MAGIC_BYTES + b"bcd"
    assert frame(payload) == header(0, 8) + payload


def test_continuation_parts_split_across_every_chunk_size():
    payloads = [b"abcd" + MAGIC_BYTES + b"efgh" + MAGIC_BYTES + b"xyz", b"plain", MAGIC_BYTES, b"q" * 9]
    data = encode_records(payloads)
    for size in (1, 2, 3, 5, 7, 8, 13, len(data)):
        assert scan_in_pieces(data, size) == payloads, size


def test_uniform_records_come_out_as_one_vectorised_run():
    payloads = [bytes([i]) * 10 for i in range(100)]
    frames = list(iter_frames([encode_records(payloads)]))
    assert len(frames) == 1 and isinstance(frames[0], FixedRun)
    run = frames[0]
    assert run.payloads.shape == (100, 10) and run.stride == 20
    assert run.to_bytes() == payloads
    assert run.record_offset(3) == 60


def test_mixed_lengths_keep_order_and_offsets():
    payloads = [b"a" * 8] * 10 + [b"b" * 3] + [b"c" * 8] * 2 + [b"d" * 5] * 7
    data = encode_records(payloads)
    frames = list(iter_frames([data]))
    assert [p for f in frames for p in f.to_bytes()] == payloads
    assert any(isinstance(f, FixedRun) for f in frames) and any(isinstance(f, VarRecords) for f in frames)
    offsets = [f.record_offset(i) for f in frames for i in range(len(f))]
    expected, pos = [], 0
    for p in payloads:
        expected.append(pos)
        pos += len(frame(p))
    assert offsets == expected


def test_run_broken_inside_a_window_is_cut_exactly():
    payloads = [b"x" * 4] * 300 + [b"yy"] + [b"x" * 4] * 50
    frames = list(iter_frames([encode_records(payloads)]))
    assert [p for f in frames for p in f.to_bytes()] == payloads
    assert len(frames[0]) == 300


def test_encode_block_matches_per_record_framing_and_splits_magic():
    rng = np.random.default_rng(0)
    block = rng.integers(0, 256, size=(50, 11), dtype=np.uint8)
    assert encode_block(block) == b"".join(frame(row.tobytes()) for row in block)
    block[7, 4:8] = np.frombuffer(MAGIC_BYTES, dtype=np.uint8)  # aligned magic inside one row
    data = encode_block(block)
    assert data == b"".join(frame(row.tobytes()) for row in block)
    assert list(iter_records(io.BytesIO(data))) == [row.tobytes() for row in block]


def test_bad_magic_names_source_and_offset():
    data = encode_records([b"good", b"also"]) + b"\x01\x02\x03\x04" + b"\0" * 8
    with pytest.raises(DataFormatError) as info:
        list(iter_records(io.BytesIO(data), source="train/part-1.pbr"))
    msg = str(info.value)
    assert "train/part-1.pbr" in msg and "byte offset 24" in msg and "0x04030201" in msg
    assert isinstance(info.value, CustomerError) and info.value.exit_code == 2


def test_text_file_is_rejected_at_offset_zero():
    with pytest.raises(DataFormatError, match=r"'data.csv' at byte offset 0"):
        list(iter_records(io.BytesIO(b"1.0,2.0,3.0\n4.0,5.0,6.0\n"), source="data.csv"))


@pytest.mark.parametrize("data", [b"1,2\n", b"1,2,3\n", b"x"])
def test_short_text_file_is_not_recordio(data):
    with pytest.raises(DataFormatError, match=r"Invalid RecordIO data in 'tiny.csv' at byte offset 0"):
        list(iter_records(io.BytesIO(data), source="tiny.csv"))


def test_truncated_payload_names_offset():
    data = encode_records([b"abcd", b"efghijkl"])
    with pytest.raises(DataFormatError) as info:
        list(iter_records(io.BytesIO(data[:-3]), source="f.rec"))
    assert "Truncated" in str(info.value) and "'f.rec' at byte offset 12" in str(info.value)
    assert "declares 8 bytes" in str(info.value)


def test_truncated_header_names_offset():
    data = encode_records([b"abcd"]) + MAGIC_BYTES[:3]
    with pytest.raises(DataFormatError, match=r"byte offset 12.*header"):
        list(iter_records(io.BytesIO(data), source="f.rec"))


def test_truncated_continuation_is_an_error():
    data = frame(b"abcd" + MAGIC_BYTES + b"efgh")
    with pytest.raises(DataFormatError, match="byte offset 0"):
        list(iter_records(io.BytesIO(data[:-8]), source="f.rec"))


def test_orphan_continuation_flag_is_an_error():
    data = frame(b"ok") + header(2, 4) + b"abcd"
    with pytest.raises(DataFormatError, match=r"byte offset 12.*continuation flag 2"):
        list(iter_records(io.BytesIO(data), source="f.rec"))


def test_flag_zero_inside_a_split_record_is_an_error():
    data = header(1, 4) + b"abcd" + header(0, 4) + b"efgh"
    with pytest.raises(DataFormatError, match=r"byte offset 12.*expected a continuation part"):
        list(iter_records(io.BytesIO(data), source="f.rec"))


def test_scanner_locate_maps_offsets_to_files():
    first = encode_records([b"a" * 8] * 3)  # 48 bytes
    bad = b"garbage!" * 2
    starts = [0, len(first)]

    def locate(offset):
        return ("b.rec", offset - starts[1]) if offset >= starts[1] else ("a.rec", offset)

    scanner = FrameScanner(locate)
    scanner.feed(first)
    with pytest.raises(DataFormatError, match=r"'b.rec' at byte offset 0"):
        scanner.feed(bad)
