"""``text/csv`` training data: no header, label in the first column when ``label_size=1``.

That is the built-ins' CSV contract; unlabeled data says ``text/csv;label_size=0`` (SageMaker developer
guide, "Common Data Formats for Training").

Chunks of whole lines are parsed by polars (``csv_fast``) where it agrees with numpy's C ``loadtxt``,
else by ``loadtxt``: float64 either way, then cast to float32, so values round exactly as a per-cell
``float()`` would. Only when a chunk fails does a slow per-line pass run, to name the first bad line:
a header, a non-numeric or empty cell, a ragged row. NaN and infinite cells (``inf``, ``1e400``, or
beyond float32's range) parse, and are located by ``first_nonfinite``; the channel decides how to
word that.
"""
from __future__ import annotations

import io
from typing import BinaryIO, Iterable, Iterator

import numpy as np

from smlocal.data.csv_fast import ParsedBlock, parse_frame, split_float32, to_float32
from smlocal.data.readahead import map_ahead
from smlocal.data.recordio import DataFormatError, read_chunks

DEFAULT_CHUNK = 8 << 20
PARSES_IN_FLIGHT = 4  # blocks polars parses at once (8 MB each: about 60 MB of text and float64 frames)
_UNPARSED = object()
NAN_MESSAGE = "Found missing (NaN) values. Please remove any missing (NaN) values in the input data."
INF_MESSAGE = "Found infinite values. Please remove or replace any infinite values in the input data."


class CsvBlock:
    """Rows parsed from consecutive lines of one source; ``lines[i]`` is row i's 1-based line number.

    A block polars parsed keeps its frame and casts it when asked: ``split`` casts the features and the
    label apart, with no float32 copy of the whole block in between."""

    def __init__(self, source: str, values: np.ndarray | None, lines: np.ndarray, parsed: ParsedBlock | None = None):
        self.source, self.lines = source, lines  # lines: int64 (n,)
        self._values, self._parsed = values, parsed

    @property
    def values(self) -> np.ndarray:
        """float32 (n, columns), label column included."""
        if self._values is None:
            self._values = to_float32(self._parsed)
        return self._values

    @property
    def columns(self) -> int:
        return self._parsed.width if self._values is None else self._values.shape[1]

    def split(self, label_size: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(features, labels): the first ``label_size`` columns are the label."""
        if self._values is None:
            return split_float32(self._parsed, label_size)
        if label_size == 0:
            return self.values, None
        return np.ascontiguousarray(self.values[:, label_size:]), self.values[:, 0].copy()


class MissingValueError(DataFormatError):
    """An empty cell: a missing value. Channels word it as the built-ins' NaN message."""

    def __init__(self, source: str, line: int, column: int):
        super().__init__(f"file '{source}' line {line}, column {column}: empty cell (missing value).")
        self.source, self.line, self.column = source, line, column


def _cell_problem(cell: bytes) -> str | None:
    text = cell.strip()
    if not text:
        return "empty"
    try:
        float(text)
    except ValueError:
        return f"the non-numeric cell {text.decode('utf-8', 'replace')[:40]!r}"
    return None


class CsvScanner:
    """Parse one source's CSV bytes given in arbitrary chunks; a line cut by a chunk waits for the next.

    ``columns`` is shared across sources of a channel through ``expect_columns``: every row of a
    channel must have the same width.
    """

    def __init__(self, source: str, expect_columns: int | None = None, first_line: int = 1):
        self.source = source
        self.columns = expect_columns
        self._line = first_line  # line number of the first line in self._rest
        self._rest = b""

    def feed(self, chunk: bytes) -> list[CsvBlock]:
        data = self.whole_lines(chunk)
        return [] if data is None else self.blocks(data)

    def finish(self) -> list[CsvBlock]:
        """Parse the last line of the source (a file need not end with a newline)."""
        data = self.last_lines()
        return [] if data is None else self.blocks(data)

    def whole_lines(self, chunk: bytes) -> bytes | None:
        """The whole lines so far, the cut one before ``chunk`` included; the cut end of ``chunk`` waits."""
        cut = chunk.rfind(b"\n") + 1
        if not cut:
            self._rest += chunk
            return None
        data = b"".join((self._rest, memoryview(chunk)[:cut]))  # one copy of the whole lines
        self._rest = bytes(chunk[cut:])
        return data

    def last_lines(self) -> bytes | None:
        """The source's last line when it does not end with a newline."""
        rest, self._rest = self._rest, b""
        return rest + b"\n" if rest.strip() else None

    def blocks(self, data: bytes, parsed: ParsedBlock | None | object = _UNPARSED) -> list[CsvBlock]:
        """The rows of ``whole_lines``' ``data``, which ``parse_frame`` may have parsed already (on another
        thread: this part keeps the line count and the width, in order)."""
        first = self._line
        if parsed is _UNPARSED:
            parsed = parse_frame(data, self.columns)
        if parsed is not None and (self.columns is None or parsed.width == self.columns):
            # polars vouched for every line, and a blank one would have been refused
            rows = parsed.frame.height
            self._line += parsed.newlines
            self.columns = parsed.width
            return [CsvBlock(self.source, None, np.arange(first, first + rows, dtype=np.int64), parsed)]
        self._line += data.count(b"\n")
        # polars could not vouch for the block: today's exact path, and its messages
        if not data.replace(b"\r\n", b"\n").strip(b"\n"):  # empty lines only (as loadtxt sees them: a
            return []  # space is a cell): no rows, and no loadtxt "input contained no data" warning
        values = self._parse_exact(data, first)
        if values.shape[0] == 0:
            return []
        if self.columns is None:
            self.columns = values.shape[1]
        elif values.shape[1] != self.columns:
            raise self._locate_problem(data, first, "")
        lines = self._line_numbers(data, first, values.shape[0])
        return [CsvBlock(self.source, values, lines)]

    def _parse_exact(self, data: bytes, first: int) -> np.ndarray:
        """numpy's loadtxt (float64, cast to float32); on failure the first bad line is named."""
        try:
            with np.errstate(all="ignore"):
                values = np.loadtxt(io.BytesIO(data), delimiter=",", dtype=np.float64, comments=None, ndmin=2)
        except ValueError as exc:
            raise self._locate_problem(data, first, str(exc)) from None
        with np.errstate(over="ignore"):  # beyond float32's range is inf: the channel names it
            return values.astype(np.float32)

    @staticmethod
    def _line_numbers(data: bytes, first: int, rows: int) -> np.ndarray:
        """Line numbers of the non-blank lines (loadtxt skips blank ones)."""
        if b"\n\n" not in data and not data.startswith(b"\n") and b"\r\n\r\n" not in data:
            if data.count(b"\n") == rows:
                return np.arange(first, first + rows, dtype=np.int64)
        kept = [first + i for i, line in enumerate(data.split(b"\n")[:-1]) if line.strip()]
        return np.asarray(kept[:rows], dtype=np.int64)

    def _locate_problem(self, data: bytes, first: int, fallback: str) -> DataFormatError:
        for i, line in enumerate(data.split(b"\n")[:-1]):
            number = first + i
            if not line.strip():
                continue
            cells = line.split(b",")
            problems = [p for p in map(_cell_problem, cells) if p]
            if problems:
                column = next(j for j, c in enumerate(cells) if _cell_problem(c)) + 1
                if problems[0] == "empty":
                    return MissingValueError(self.source, number, column)
                if number == 1 and 2 * len(problems) >= len(cells):
                    return DataFormatError(
                        f"file '{self.source}' line 1 is not numeric ({problems[0]}); it looks like a header row. "
                        "CSV training data must not have a header: remove the first line."
                    )
                return DataFormatError(
                    f"file '{self.source}' line {number}, column {column}: {problems[0]}. "
                    "Every cell must be a number."
                )
            if self.columns is None:
                self.columns = len(cells)
            elif len(cells) != self.columns:
                return DataFormatError(
                    f"file '{self.source}' line {number} has {len(cells)} columns but the rows before it have "
                    f"{self.columns}. Every row must have the same number of columns."
                )
        last = first + data.count(b"\n") - 1
        return DataFormatError(f"file '{self.source}' lines {first}-{last}: {fallback}")


def first_nonfinite(values: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first NaN or infinite value in a 2-D array, or None."""
    # min and max propagate NaN and reach +-inf: two reductions, no temporary, for data that is finite
    if values.size == 0 or (np.isfinite(values.min()) and np.isfinite(values.max())):
        return None
    bad = ~np.isfinite(values)
    row = int(np.flatnonzero(bad.any(axis=1))[0])
    return row, int(np.flatnonzero(bad[row])[0])


def nonfinite_message(value: float) -> str:
    """The built-ins' NaN message for a NaN, the infinite-value message otherwise."""
    return NAN_MESSAGE if np.isnan(value) else INF_MESSAGE


def iter_csv_blocks(stream: BinaryIO, source: str, chunk_size: int = DEFAULT_CHUNK) -> Iterator[CsvBlock]:
    """The blocks of one source (tools, tests)."""
    return iter_channel_blocks([(source, stream)], chunk_size)


def iter_channel_blocks(sources: Iterable[tuple[str, BinaryIO]], chunk_size: int = DEFAULT_CHUNK) -> Iterator[CsvBlock]:
    """The blocks of a channel's sources in order, one width for all of them. polars parses the next
    ``PARSES_IN_FLIGHT`` blocks at once, on a thread pool, while this thread reads the sources and casts,
    numbers and checks the blocks parsed: a single polars call leaves a core idle in its serial parts
    (measured: 0.89x polars' whole-file rate with one block ahead, about 1.1x with four)."""
    def whole_lines() -> Iterator[tuple[CsvScanner, bytes]]:
        for source, stream in sources:
            scanner = CsvScanner(source)
            for chunk in read_chunks(stream, chunk_size):
                data = scanner.whole_lines(chunk)
                if data is not None:
                    yield scanner, data
            data = scanner.last_lines()
            if data is not None:
                yield scanner, data

    columns = None
    for (scanner, data), parsed in map_ahead(lambda item: parse_frame(item[1]), whole_lines(), PARSES_IN_FLIGHT,
                                             name="smlocal-csv-parse"):
        scanner.columns = columns  # every scanner of the channel keeps the width the first one found
        yield from scanner.blocks(data, parsed)
        columns = scanner.columns


def read_csv(path, label_size: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """Whole-file convenience (tools, tests): (float32 features, float32 labels or None)."""
    with open(path, "rb") as f:
        blocks = list(iter_csv_blocks(f, str(path)))
    check_label_size(blocks[0].columns if blocks else None, label_size, str(path))
    if not blocks:
        return np.zeros((0, 0), dtype=np.float32), (np.zeros(0, dtype=np.float32) if label_size else None)
    for block in blocks:
        bad = first_nonfinite(block.values)
        if bad is not None:
            row, column = bad
            value = block.values[row, column]
            where = f"line {block.lines[row]}" + ("" if np.isnan(value) else f", column {column + 1}")
            raise DataFormatError(f"file '{path}' {where}: {nonfinite_message(value)}")
    values = np.concatenate([b.values for b in blocks])
    merged = CsvBlock(str(path), values, np.concatenate([b.lines for b in blocks]))
    return merged.split(label_size)


def check_label_size(columns: int | None, label_size: int, source: str) -> None:
    if columns is not None and columns <= label_size:
        raise DataFormatError(
            f"file '{source}' has {columns} column(s): with label_size={label_size} no feature column is left. "
            "Put the label in the first column followed by the features, or use label_size=0."
        )
