"""``application/json``: ``{"instances": [...]}`` requests, ``{"predictions": [...]}`` responses."""
from __future__ import annotations

import json

from smlocal.serving.codecs.base import Columns, Features, bad_payload
from smlocal.serving.codecs.instances import to_features
from smlocal.serving.codecs.numbers import json_rows

MEDIA_TYPE = "application/json"


def load_json(text: bytes, where: str):
    try:
        return json.loads(text)
    except UnicodeDecodeError:
        raise bad_payload(f"{where} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise bad_payload(f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:  # the parser recurses once per level of [ or {
        raise bad_payload(f"{where} is JSON nested too deeply; send records as flat lists of numbers") from None


def decode(body: bytes, params: dict[str, str] | None = None) -> Features:
    doc = load_json(body, "the body")
    if not isinstance(doc, dict) or not isinstance(doc.get("instances"), list):
        raise bad_payload('expected a JSON object with an "instances" list, e.g. '
                          '{"instances": [{"features": [1.5, 16.0]}]}')
    return to_features(doc["instances"])


def rows(columns: Columns) -> list[dict]:
    """Per-row objects in column order; float32 values become the same doubles the built-ins print."""
    names = list(columns)
    lists = [col.tolist() for col in columns.values()]
    return [dict(zip(names, values, strict=False)) for values in zip(*lists, strict=False)]


def encode(columns: Columns) -> bytes:
    fast = json_rows(columns)
    if fast is None:
        return json.dumps({"predictions": rows(columns)}).encode("utf-8")
    return b'{"predictions": ' + fast + b"}"
