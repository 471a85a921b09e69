"""Fast paths for the two costly steps of a request: reading CSV numbers and writing JSON rows.

Each returns None when its input is anything but the common case; the caller then takes its general
path, so results and error messages are the same either way (only the time differs).
"""
from __future__ import annotations

import functools
import json
import re
from typing import Optional

import numpy as np
import orjson

from smlocal.serving.codecs.base import Columns

# Bytes a plain decimal CSV field is made of. With nothing else in the body, a JSON parser can only
# read it as a flat list of numbers.
_PLAIN_NUMBER_BYTES = b"0123456789+-.eE \t,"
_PLAIN_ROW_BYTES = _PLAIN_NUMBER_BYTES + b"\n"
_INTEGER_MINUS_ZERO = re.compile(rb"-0(?![0-9.eE])")  # "-0" as a whole field ("-0.5", "-0e1" are floats)


def plain_csv_values(joined: bytes, count: int) -> Optional[np.ndarray]:
    """``count`` comma-separated decimal numbers -> float32 (count,), or None for anything else.

    JSON's number syntax is a subset of ``float()``'s and orjson rounds to the same (correctly rounded)
    double, so the float32 values are those of ``float(field)`` cast to float32, as the general path
    gives. What JSON refuses (``1.``, ``+1``, ``nan``, a field too large for a double) goes there.
    """
    if joined.translate(None, _PLAIN_NUMBER_BYTES):
        return None
    try:
        values = np.array(orjson.loads(b"[" + joined + b"]"), dtype=np.float64)
    except (orjson.JSONDecodeError, OverflowError, ValueError, TypeError):
        return None
    return _single(values, joined) if values.shape == (count,) else None


def plain_csv_rows(body: bytes) -> Optional[np.ndarray]:
    """A whole CSV body of such numbers, every line as wide -> float32 (n, d), or None for anything else.

    One orjson call reads every line: each line end becomes a ``null``, which numpy reads as NaN (JSON
    has no NaN of its own), so the rows are all as wide exactly when the NaNs close every row of a
    (n, d + 1) reshape. Blank lines, ``\r`` and ragged rows go to the general path, which names them.
    """
    text = body.rstrip(b"\n")
    if not text or text.translate(None, _PLAIN_ROW_BYTES):
        return None
    try:
        values = np.array(orjson.loads(b"[" + text.replace(b"\n", b",null,") + b",null]"), dtype=np.float64)
    except (orjson.JSONDecodeError, OverflowError, ValueError, TypeError):
        return None
    ends = np.isnan(values)
    width = int(ends.argmax()) + 1  # the first line's values and its end
    if width < 2 or values.size % width:
        return None
    ends = ends.reshape(-1, width)
    if not ends[:, -1].all() or ends[:, :-1].any():
        return None  # a line of another width
    return _single(values.reshape(-1, width)[:, :-1], text)


def _single(values: np.ndarray, text: bytes) -> Optional[np.ndarray]:
    """The doubles as float32, or None where the general path must decide (a sign or a non-finite value)."""
    if not values.all() and _INTEGER_MINUS_ZERO.search(text):
        return None  # JSON reads the integer -0 as 0, float() as -0.0: let the general path keep the sign
    with np.errstate(over="ignore"):
        single = values.astype(np.float32)
    return single if np.isfinite(single).all() else None


def _cell_format(column: np.ndarray) -> Optional[str]:
    if column.dtype.kind != "f" or column.ndim not in (1, 2) or not np.isfinite(column).all():
        return None  # NaN/inf (json's NaN, Infinity), ints, bools: json.dumps says how they print
    return "%r" if column.ndim == 1 else "[%s]"


@functools.lru_cache(maxsize=64)  # a model answers with one set of columns
def _row_template(names: tuple[str, ...], formats: tuple[str, ...]) -> str:
    keys = [json.dumps(name).replace("%", "%%") for name in names]  # a '%' in a name is not a format
    return "{" + ", ".join(f"{key}: {fmt}" for key, fmt in zip(keys, formats, strict=True)) + "}"


def json_row_texts(columns: Columns) -> Optional[list[str]]:
    """Each row as ``json.dumps`` writes ``{name: value, ...}`` (default separators, ``repr`` floats,
    a 2-D column as a list), or None where a column holds anything but finite floats."""
    formats = [_cell_format(col) for col in columns.values()]
    if any(f is None for f in formats):
        return None
    template = _row_template(tuple(columns), tuple(formats))
    cells = [col.tolist() if col.ndim == 1 else [", ".join(map(repr, row)) for row in col.tolist()]
             for col in columns.values()]
    return [template % values for values in zip(*cells, strict=False)]


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _orjson_prints_as_json(columns: Columns) -> bool:
    """orjson writes a float as ``repr`` does for 0 and 1e-4 <= |x| < 1e16 (outside, its exponents read
    ``1e-5``, not ``1e-05``; NaN and inf fail the test too); plain column names need no escaping."""
    for name, col in columns.items():
        if col.dtype.kind != "f" or col.ndim not in (1, 2) or not _PLAIN_NAME.fullmatch(name):
            return False
        magnitude = np.abs(col)
        if not (((magnitude >= 1e-4) | (magnitude == 0)) & (magnitude < 1e16)).all():
            return False
    return True


def _orjson_cells(col: np.ndarray) -> list[bytes]:
    """Each row's value of a column as json.dumps writes it (``2.0``, ``[1.5, 2.0]``), from one orjson call.

    As doubles: ``tolist`` gives the float32 values as doubles, and json.dumps prints those."""
    text = orjson.dumps(col.astype(np.float64), option=orjson.OPT_SERIALIZE_NUMPY)
    if col.ndim == 1:
        return text[1:-1].split(b",")
    return [b"[" + row.replace(b",", b", ") + b"]" for row in text[2:-2].split(b"],[")]


def json_rows(columns: Columns) -> Optional[bytes]:
    """The list of rows as ``json.dumps`` writes it (``[{"a": 1.0, "b": [2.0, 3.0]}, ...]``), or None."""
    if _orjson_prints_as_json(columns):
        rows = len(next(iter(columns.values()), ()))
        if rows == 0:
            return b"[]"
        keyed = [list(map((b'"%s": ' % name.encode()).__add__, _orjson_cells(col))) for name, col in columns.items()]
        return b"[{" + b"}, {".join(map(b", ".join, zip(*keyed, strict=True))) + b"}]"
    texts = json_row_texts(columns)
    return None if texts is None else ("[" + ", ".join(texts) + "]").encode("utf-8")
