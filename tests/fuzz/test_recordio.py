"""RecordIO framer: framed payloads read back exactly, however the stream is cut; bad bytes are a
``DataFormatError``, the same one however the stream is cut."""
from __future__ import annotations

import io

from hypothesis import given, strategies as st

from smlocal.data.recordio import MAGIC_BYTES, encode_records, frame, iter_frames, iter_records
from tests.fuzz.harness import CI, Target, is_error, outcome
from tests.fuzz.mutations import chunk_cuts, fuzzed

# Payload pieces: the magic at aligned offsets makes dmlc's writer split a record into parts.
_piece = st.sampled_from([MAGIC_BYTES, b"\0\0\0\0", b"\x0a\x23\xd7\xce"]) | st.binary(max_size=9)
payload = st.lists(_piece, max_size=6).map(b"".join)
# Runs of equal-length records take the vectorised path.
equal_payloads = st.integers(0, 24).flatmap(
    lambda n: st.lists(st.binary(min_size=n, max_size=n) | st.just(MAGIC_BYTES * (n // 4) + b"\1" * (n % 4)),
                       min_size=4, max_size=12))
payloads = st.lists(payload, max_size=8) | equal_payloads


def read(chunks: list[bytes]) -> tuple[list[bytes], BaseException | None]:
    """(payloads read, the typed error that ended the stream or None)."""
    got: list[bytes] = []

    def run() -> None:
        for frames in iter_frames(chunks, source="fuzz"):
            got.extend(frames.to_bytes())

    error = outcome(run)
    return got, error if is_error(error) else None


@st.composite
def valid_cases(draw):
    records = draw(payloads)
    data = encode_records(records)
    return "valid", records, data, draw(chunk_cuts(data))


@st.composite
def byte_cases(draw):
    data = draw(fuzzed(payloads.map(encode_records)))
    return "bytes", None, data, draw(chunk_cuts(data))


def check(case) -> None:
    kind, records, data, chunks = case
    whole, whole_error = read([data])
    cut, cut_error = read(chunks)
    if kind == "valid":
        assert data == b"".join(frame(p) for p in records)  # the vectorised writer frames as dmlc does
        assert whole_error is None and cut_error is None
        assert whole == records and cut == records
        assert list(iter_records(io.BytesIO(data), chunk_size=7)) == records
        return
    assert (whole_error is None) == (cut_error is None), (whole_error, cut_error)
    if whole_error is None:
        assert whole == cut
    else:
        assert str(whole_error) == str(cut_error)


TARGET = Target("recordio", valid_cases() | byte_cases(), check)


@CI
@given(valid_cases())
def test_framed_payloads_read_back_exactly(case):
    check(case)


@CI
@given(byte_cases())
def test_bad_bytes_give_the_same_typed_error_however_cut(case):
    check(case)
