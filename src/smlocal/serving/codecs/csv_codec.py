"""``text/csv``: one record per line, features only, no header; CSV responses.

The request shape is SageMaker developer guide, "Common Data Formats for Inference".
"""
from __future__ import annotations

import numpy as np

from smlocal.serving.codecs.base import Columns, bad_payload, require_finite, require_rows
from smlocal.serving.codecs.numbers import plain_csv_rows, plain_csv_values

MEDIA_TYPE = "text/csv"


def _locate_bad_value(lines: list[bytes]) -> str:
    for r, line in enumerate(lines, 1):
        for c, field in enumerate(line.split(b","), 1):
            try:
                float(field)
            except ValueError:
                shown = field.decode("utf-8", "replace").strip()
                return f"row {r}, column {c}: '{shown[:40]}' is not a number"
    return "a value is not a number"  # not reached: the caller saw a conversion failure


def decode(body: bytes, params: dict[str, str] | None = None) -> np.ndarray:
    """CSV bytes -> float32 (n, d). Every line must have the same number of values."""
    fast = plain_csv_rows(body)
    if fast is not None:
        return fast
    lines = body.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    require_rows(len(lines))
    commas = lines[0].count(b",")
    if _well_formed(lines, commas):
        return _parse(lines, commas)
    for r, line in enumerate(lines, 1):
        if not line.strip():
            raise bad_payload(f"row {r} is empty; send one record per line")
        if line.count(b",") != commas:
            raise bad_payload(f"row {r} has {line.count(b',') + 1} values but row 1 has {commas + 1}")
    return _parse(lines, commas)  # not reached: the loop names what _well_formed saw


def _well_formed(lines: list[bytes], commas: int) -> bool:
    """Every line as wide as the first and none blank (the loop in ``decode`` names the first that is not)."""
    if [line.count(b",") for line in lines].count(commas) != len(lines):
        return False
    return commas > 0 or all(map(bytes.strip, lines))  # a blank line has no comma


def _parse(lines: list[bytes], commas: int) -> np.ndarray:
    joined = b",".join(lines)
    values = plain_csv_values(joined, len(lines) * (commas + 1))
    if values is None:
        try:
            # one C-level conversion of every field; on failure we rescan to name the row and column
            values = np.array(joined.split(b","), dtype=np.float32)
        except ValueError:
            raise bad_payload(_locate_bad_value(lines)) from None
    X = values.reshape(len(lines), commas + 1)
    require_finite(X)
    return X


def _cell(value) -> str:
    return repr(value)  # shortest round-trip text of the float32 value as a double ("0.5", "2.0")


def encode(columns: Columns) -> bytes:
    """One line per row: the columns in order, a multi-value column (multiclass score) expanded."""
    lists = [col.tolist() for col in columns.values()]
    lines = []
    for values in zip(*lists, strict=False):
        cells = []
        for v in values:
            if isinstance(v, list):
                cells.extend(_cell(x) for x in v)
            else:
                cells.append(_cell(v))
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
