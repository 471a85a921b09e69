"""The fast path for CSV blocks: polars' multi-threaded parser, trusted only where it agrees with loadtxt.

polars parses every cell as float64, correctly rounded as numpy's ``loadtxt`` does, and its cast to
float32 rounds as numpy's: values are bit for bit those of the exact path (``CsvScanner._parse_exact``).
polars is stricter than ``loadtxt`` on a few inputs (trailing whitespace, blank lines, an empty or
missing cell, a ragged row, any bad cell): then ``parse_frame`` returns None and the caller parses the
block the exact way, which also names the first bad line. The one input seen that polars accepts and
``loadtxt`` refuses, a UTF-8 byte-order mark before the first cell, is kept off this path.
tests/unit/data/test_csv_fast.py holds the inputs compared.

One polars call per block: polars splits a block of some MB over its own threads (both cores busy,
measured), and releases the GIL meanwhile. Cutting the block into one part per core ourselves cost
more CPU (a copy per part, more calls) for no gain in wall time.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

BYTE_ORDER_MARK = b"\xef\xbb\xbf"


@lru_cache(maxsize=1)
def available() -> bool:
    """Whether polars is installed (the ``fast-csv`` extra). The images leave it out: it adds about 170 MB,
    past their 700 MB budget; without it every block takes the exact path, with the same values and messages."""
    return importlib.util.find_spec("polars") is not None


@lru_cache(maxsize=8)
def _float64_schema(width: int) -> dict:
    import polars as pl

    return {f"c{i}": pl.Float64 for i in range(width)}


@dataclass(frozen=True)
class ParsedBlock:
    """polars' float64 frame of a block's lines (one row per line) and the newlines the block holds."""

    frame: object  # polars.DataFrame
    newlines: int

    @property
    def width(self) -> int:
        return self.frame.width


def parse_frame(data: bytes, columns: int | None = None) -> ParsedBlock | None:
    """polars' parse of ``data``, whole lines each ending in a newline, or None: use the exact path. This is
    the heavy part (polars' threads, the GIL released), so a channel runs it a block ahead (``csv.py``).

    ``columns`` is the width the channel expects (None: the first line's). Trailing blank lines are
    allowed (the last block of a file often has one). polars keeps every other line as a row (a blank
    or white line is a row of nulls, refused here), so the rows number the lines and no count is needed.
    """
    end = len(data)
    while end and data[end - 1] == 0x0A:  # trailing blank lines: rows stop at the last cell
        end -= 1
    if not end or data.startswith(BYTE_ORDER_MARK) or not available():
        return None
    first_end = data.find(b"\n", 0, end)
    width = columns or data.count(b",", 0, first_end if first_end >= 0 else end) + 1
    frame = _read_part(data if end + 1 >= len(data) else data[: end + 1], _float64_schema(width))
    if frame is None:
        return None
    return ParsedBlock(frame, frame.height - 1 + len(data) - end)


def to_float32(parsed: ParsedBlock) -> np.ndarray:
    """Row-major float32 (rows, columns) of the frame. polars' float64 -> float32 cast rounds as numpy's
    ``astype`` (to nearest even; beyond float32's range is inf, as in the exact path, and the channel
    names it): the same bits, and one pass with no float64 copy."""
    import polars as pl

    return parsed.frame.select(pl.all().cast(pl.Float32)).to_numpy(order="c")


def split_float32(parsed: ParsedBlock, label_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(row-major float32 features, float32 labels or None): ``to_float32``'s values, the features (the
    columns after the first ``label_size``) and the label (the first column) cast apart."""
    import polars as pl

    if label_size == 0:
        return to_float32(parsed), None
    frame = parsed.frame
    features = frame.select(pl.nth(range(label_size, frame.width)).cast(pl.Float32)).to_numpy(order="c")
    return features, frame.to_series(0).cast(pl.Float32).to_numpy(writable=True)


def parse_block(data: bytes, columns: int | None = None) -> tuple[np.ndarray, int] | None:
    """(float32 (rows, columns), newlines in ``data``), or None: ``parse_frame`` and ``to_float32`` in one."""
    parsed = parse_frame(data, columns)
    return None if parsed is None else (to_float32(parsed), parsed.newlines)


def _read_part(part: bytes, schema: dict):
    """polars' float64 frame of ``part``, or None when it refuses a line or finds a null."""
    import polars as pl

    try:
        frame = pl.read_csv(part, has_header=False, schema=schema, quote_char=None,
                            comment_prefix=None, null_values=None, ignore_errors=False,
                            truncate_ragged_lines=False, decimal_comma=False, raise_if_empty=True)
    except (pl.exceptions.PolarsError, ValueError, OverflowError):
        return None
    if frame.height == 0 or any(frame.null_count().row(0)):
        return None
    return frame
