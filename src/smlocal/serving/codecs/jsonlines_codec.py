"""``application/jsonlines``: one instance object per line in, one prediction object per line out."""
from __future__ import annotations

import json

from smlocal.serving.codecs.base import Columns, Features, bad_payload, require_rows
from smlocal.serving.codecs.instances import to_features
from smlocal.serving.codecs.json_codec import load_json, rows
from smlocal.serving.codecs.numbers import json_row_texts

MEDIA_TYPE = "application/jsonlines"


def decode(body: bytes, params: dict[str, str] | None = None) -> Features:
    lines = body.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    require_rows(len(lines))
    instances = []
    for r, line in enumerate(lines, 1):
        if not line.strip():
            raise bad_payload(f"row {r} is empty; send one JSON object per line")
        instances.append(load_json(line, f"row {r}"))
    return to_features(instances)


def encode(columns: Columns) -> bytes:
    texts = json_row_texts(columns)
    if texts is None:
        texts = [json.dumps(row) for row in rows(columns)]
    return "".join(text + "\n" for text in texts).encode("utf-8")
