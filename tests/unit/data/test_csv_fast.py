"""CSV fast path (polars): every value bit for bit, every line number and every message as the exact path
(numpy's loadtxt, the reader before polars) gives them, on tricky cells, structures and random bytes."""
from __future__ import annotations

import io
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import smlocal.data.csv as csv_module
from smlocal.data.channels import open_channel
from smlocal.data.csv import CsvScanner, DataFormatError, iter_csv_blocks
from smlocal.data.csv_fast import parse_block
from smlocal.errors import CustomerError
from tests.helpers import training_env
from tests.unit.data.test_channels import FifoWriter, collect

CELLS = [
    "1.", ".5", "+1", "-0", "+0", "-0.0", "1e5", "1E+05", "1e-400", "1e400", "-1e400", "1e39", "-3.4028236e38",
    "inf", "-inf", "+inf", "Inf", "INF", "infinity", "-Infinity", "iNfInItY", "nan", "NaN", "-nan", "+nan", "NAN",
    "nan(123)", "0x1p3", "0x10", "1_000", "1e", "e5", ".", "+", "-", " 1.5", "1.5 ", "\t2", " \t 1", "\x0b1",
    "\x0c1", "1\x0b", "1 2", "1d5", "0.1f", "\u0661", "\uff11", "\xa01", "2.2250738585072011e-308",
    "0.1000000000000000055511151231257827", "1" * 400, "0." + "0" * 300 + "1", "." + "0" * 500 + "1e500",
    "3.4028235677973366e38", "3.4028236e38", "1e-46", "1.4e-45", "7e-46", "++1", "--1", "1-2", "1e+", "1e5.5",
    "00012", "-.5", "+.5e-3", "5.e2", "", " ", '"1"', "'1'", "\x00", "1\x00", "true", "1.5e308", "1.8e308",
    "4.9e-324", "2e-324", "1ee5", "1.2.3", "NA", "null", "None", "16777217", "0.30000000000000004",
    "123456789012345678901234567890", "9007199254740993", "1e0000000000000000000000000001",
]
STRUCTURES = [
    b"1,2\n3\n", b"1,2\n3,4,5\n", b"1,2\n\n3,4\n", b"\n1,2\n", b"1,2\n \n3,4\n", b"1,2\r\n3,4\r\n", b"1,2\r3,4\n",
    b"1\r2,3\n", b"1,2,\n3,4,\n", b"\xef\xbb\xbf1,2\n3,4\n", b"1\n2\n", b"1\n\n2\n", b"a,b\n1,2\n", b"1,2\n3,4",
    b"1,2\n\r\n3,4\n", b"1,2\n,\n", b"1,2\n3,4\n\n\n", b"#1,2\n3,4\n", b"1,2 \n", b"1 ,2\n", b"1;2\n", b"1\t,2\n",
    b"1,\t2\n", b"1,2\n\t\n", b'"1",2\n', b"1,2\x00\n", b"1,2\r\n\r\n", b"\n\n\n", b"\r\n", b"label,x\n", b",\n",
    b"1,2\n3,4\n" * 3 + b"5,six\n", b"1,2\n" * 4 + b"1,2,3\n",
]


def outcome(data: bytes, chunk: int | None = None, columns: int | None = None, pipelined: bool = False):
    """(values bytes, shape, lines, columns) or (error type, message) of a scanner fed ``data``, or of the
    channels' pipelined reader (polars a block ahead on a thread) when ``pipelined``."""
    scanner = CsvScanner("train.csv", columns)
    chunk = chunk or max(len(data), 1)
    try:
        if pipelined:
            blocks = list(iter_csv_blocks(io.BytesIO(data), "train.csv", chunk_size=chunk))
            scanner.columns = blocks[-1].values.shape[1] if blocks else None
        else:
            blocks = []
            for i in range(0, len(data), chunk):
                blocks += scanner.feed(data[i : i + chunk])
            blocks += scanner.finish()
    except DataFormatError as exc:
        return type(exc).__name__, str(exc)
    if not blocks:
        return "no rows", scanner.columns
    values = np.concatenate([b.values for b in blocks])
    assert values.dtype == np.float32 and values.flags["C_CONTIGUOUS"]
    return values.tobytes(), values.shape, np.concatenate([b.lines for b in blocks]).tolist(), scanner.columns


def exact_outcome(monkeypatch, *args, **kwargs):
    """The reader as it was before polars: every block through loadtxt."""
    with monkeypatch.context() as patch:
        patch.setattr(csv_module, "parse_frame", lambda data, columns=None: None)
        return outcome(*args, **kwargs)


@pytest.mark.parametrize("cell", CELLS)
def test_tricky_cells_as_the_exact_path(cell, monkeypatch):
    for data in (f"0,{cell}\n" * 3, f"{cell},0\n1,2\n", f"1,2\n{cell},{cell}\n"):
        data = data.encode()
        assert outcome(data) == exact_outcome(monkeypatch, data), (cell, data)


@pytest.mark.parametrize("data", STRUCTURES)
@pytest.mark.parametrize("chunk", [None, 3])
def test_structures_as_the_exact_path(data, chunk, monkeypatch):
    assert outcome(data, chunk) == exact_outcome(monkeypatch, data, chunk)
    assert outcome(data, chunk, pipelined=True) == exact_outcome(monkeypatch, data, chunk)
    assert outcome(data, chunk, columns=3) == exact_outcome(monkeypatch, data, chunk, columns=3)


def _double_rounding_case() -> tuple[str, np.float32]:
    """A decimal just above the midpoint of two float32s that float64 rounds onto the midpoint: through
    float64 it ties to the even float32 below; parsed straight to float32 it would round up."""
    low = np.float32(1.0) + np.float32(2.0**-22)  # even last mantissa bit: the tie goes to it
    high = np.nextafter(low, np.float32(2.0))
    midpoint = (Decimal(float(low)) + Decimal(float(high))) / 2
    text = f"{midpoint:f}" + "0000000000001"  # exact digits, then a little more
    assert float(text) == float(midpoint) and Decimal(text) > midpoint
    return text, low


def test_values_round_through_float64_then_float32():
    text, low = _double_rounding_case()
    cells = [text, "-0", "+1.5", "1e-46", "3.4028235677973366e38", "0.1", "123456789.123456789e-3"]
    block = CsvScanner("t.csv").feed(",".join(cells).encode() + b"\n")[0]
    with np.errstate(over="ignore"):
        expected = np.array([np.float64(c) for c in cells], dtype=np.float64).astype(np.float32)
    assert block.values.tobytes() == expected.reshape(1, -1).tobytes()
    assert block.values[0, 0] == low and np.signbit(block.values[0, 1])


def test_clean_blocks_take_the_fast_path():
    # without this the comparisons above would pass with polars never used
    values, newlines = parse_block(b"1,2.5\n-3,4e2\n\n", None)
    assert values.tolist() == [[1, 2.5], [-3, 400]] and newlines == 3
    rows = np.arange(3000, dtype=np.float32).reshape(1000, 3)
    values, newlines = parse_block(b"".join(b"%d,%d,%d\n" % tuple(r) for r in rows.astype(int)), None)
    assert values.tobytes() == rows.tobytes() and newlines == 1000
    for refused in (b"1,2 \n", b"1,2\n\n3,4\n", b"\xef\xbb\xbf1,2\n", b"1,2\n3\n", b"1,,2\n", b"a,b\n"):
        assert parse_block(refused, None) is None, refused
    assert parse_block(b"1,2,3\n", 2) is None  # the channel's width is kept


def test_first_bad_line_deep_in_a_large_block_is_named(monkeypatch):
    rows = "".join(f"{i},{i * 0.5},{-i}\n" for i in range(5000))
    for bad, message in (("7,x,9", "line 4001, column 2: the non-numeric cell 'x'"),
                         ("7,8", "line 4001 has 2 columns but the rows before it have 3"),
                         ("7,,9", "line 4001, column 2: empty cell")):
        lines = rows.splitlines(keepends=True)
        data = "".join(lines[:4000] + [bad + "\n"] + lines[4001:]).encode()
        got = outcome(data)
        assert got == exact_outcome(monkeypatch, data) and message in got[1]
        assert outcome(data, 20_000, pipelined=True) == got  # the bad line in the 4th of 5 blocks


_token = st.sampled_from(["1", "-2.5", "3e4", "nan", "inf", "", " ", "x", "1e400", "+0", "-0", ".5", "7 "])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_token, min_size=1, max_size=4).map(",".join), min_size=1, max_size=8),
       st.sampled_from(["\n", "\r\n"]), st.integers(1, 40))
def test_random_rows_as_the_exact_path(rows, newline, chunk):
    data = newline.join(rows).encode() + newline.encode()
    with pytest.MonkeyPatch.context() as patch:
        assert outcome(data, chunk) == exact_outcome(patch, data, chunk)
        assert outcome(data, chunk, pipelined=True) == exact_outcome(patch, data, chunk)


def test_pipe_mode_reads_the_fast_path_rows(base):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3000, 5)).astype(np.float32)
    y = rng.integers(0, 2, 3000).astype(np.float32)
    text = "".join(f"{int(label)}," + ",".join(repr(float(v)) for v in row) + "\n" for label, row in zip(y, x))
    env = training_env(base, {"train": {"TrainingInputMode": "Pipe", "ContentType": "text/csv"}})
    writer = FifoWriter(base, [text.encode()], piece=65536)
    writer.start()
    channel = open_channel(env, "train", chunk_size=50_000)  # several blocks, each cut mid-line
    features, labels, sizes = collect(channel.batches(1000))
    writer.join(10)
    assert writer.error is None
    np.testing.assert_array_equal(features, x)
    np.testing.assert_array_equal(labels, y)
    assert sizes == [1000, 1000, 1000]


def test_pipe_mode_bad_line_is_named(base):
    text = b"1,2,3\n" * 2000 + b"1,2,oops\n"
    env = training_env(base, {"train": {"TrainingInputMode": "Pipe", "ContentType": "text/csv"}})
    writer = FifoWriter(base, [text], piece=65536)
    writer.start()
    channel = open_channel(env, "train", chunk_size=4096)
    with pytest.raises(CustomerError, match=r"line 2001, column 3: the non-numeric cell 'oops'"):
        list(channel.batches(100))
    writer.join(10)


def test_without_polars_every_block_takes_the_exact_path(monkeypatch):
    """The images leave polars out (the fast-csv extra): the same rows then come from loadtxt."""
    from smlocal.data import csv_fast

    block = b"1.5,2,3\n4,5,6e-1\n"
    assert csv_fast.parse_block(block) is not None  # polars is installed here, as in the tests' extras
    monkeypatch.setattr(csv_fast, "available", lambda: False)
    assert csv_fast.parse_block(block) is None


@pytest.mark.parametrize("label_size", [0, 1])
def test_split_of_a_polars_block_is_the_exact_blocks(label_size, monkeypatch):
    """A polars block casts its features and label apart; they are the exact path's, bit for bit."""
    rng = np.random.default_rng(4)
    data = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rng.standard_normal((500, 6)) * 1e3).encode()
    fast = CsvScanner("t.csv").feed(data)[0]
    assert fast._values is None  # the polars path, its frame not yet cast
    with monkeypatch.context() as patch:
        patch.setattr(csv_module, "parse_frame", lambda data, columns=None: None)
        exact = CsvScanner("t.csv").feed(data)[0]
    for got, want in zip(fast.split(label_size), exact.split(label_size)):
        if want is None:
            assert got is None
            continue
        assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"] and got.flags["WRITEABLE"]
        assert got.tobytes() == want.tobytes() and got.shape == want.shape
