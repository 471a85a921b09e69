"""CSV reader: written rows read back exactly, with their line numbers, however the file is cut; any
other bytes are a ``DataFormatError`` or rows that do not depend on where the cuts fall."""
from __future__ import annotations

import numpy as np
from hypothesis import example, given, strategies as st
from hypothesis.extra import numpy as hnp

from smlocal.data.csv import CsvScanner
from tests.fuzz.harness import CI, Target, is_error, outcome
from tests.fuzz.mutations import chunk_cuts, fuzzed

_cell = st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def written(draw) -> tuple[np.ndarray, bytes, list[int]]:
    """(values, CSV bytes, 1-based line of each row): blank lines, CRLF and a missing last newline included."""
    n, d = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    values = draw(hnp.arrays(np.float32, (n, d), elements=_cell))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    lines, numbers = [], []
    for row in values:
        lines.extend([b""] * draw(st.integers(0, 1)))
        lines.append(b",".join(repr(float(v)).encode() for v in row))
        numbers.append(len(lines))
    text = newline.join(lines) + draw(st.sampled_from([newline, b""]))
    return values, text, numbers


def read(chunks: list[bytes]):
    """(values (n, d), line numbers) or the typed error."""
    def run():
        scanner = CsvScanner("fuzz.csv")
        blocks = [b for chunk in chunks for b in scanner.feed(chunk)] + scanner.finish()
        for block in blocks:
            assert block.values.dtype == np.float32 and block.values.ndim == 2
            assert block.lines.shape == (block.values.shape[0],), "a row without its line number"
        if not blocks:
            return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
        return np.concatenate([b.values for b in blocks]), np.concatenate([b.lines for b in blocks])

    return outcome(run)


@st.composite
def valid_cases(draw):
    values, text, numbers = draw(written())
    return "valid", (values, numbers), text, draw(chunk_cuts(text))


@st.composite
def byte_cases(draw):
    text = draw(fuzzed(written().map(lambda w: w[1])))
    return "bytes", None, text, draw(chunk_cuts(text))


def check(case) -> None:
    kind, expected, text, chunks = case
    whole, cut = read([text]), read(chunks)
    if kind == "valid":
        values, numbers = expected
        for got in (whole, cut):
            assert not is_error(got), got
            np.testing.assert_array_equal(got[0], values)
            assert got[1].tolist() == numbers
        return
    assert is_error(whole) == is_error(cut), (whole, cut)
    if is_error(whole):
        return
    np.testing.assert_array_equal(whole[0], cut[0])
    assert whole[1].tolist() == cut[1].tolist()
    lines = whole[1].tolist()
    assert lines == sorted(set(lines)) and all(1 <= n <= text.count(b"\n") + 1 for n in lines)


TARGET = Target("csv", valid_cases() | byte_cases(), check)


@CI
@given(valid_cases())
def test_written_rows_read_back_with_their_lines(case):
    check(case)


@CI
@given(byte_cases())
# Finding (in a first skip of blank chunks): a tab-only line was an error read whole, skipped when cut.
@example(("bytes", None, b"\t\n0\n", [b"\t\n", b"0\n"]))
def test_bad_bytes_are_a_typed_error_however_cut(case):
    check(case)
