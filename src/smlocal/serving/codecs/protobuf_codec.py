"""``application/x-recordio-protobuf``: RecordIO-framed ``aialgs.data.Record``s, dense or sparse.

Responses: one Record per input row whose ``label`` map holds the output columns as float32 tensors
(spec §4.3), exactly what the SDK's ``RecordDeserializer`` reads back.
"""
from __future__ import annotations

import io

from smlocal.data.protobuf import label_records, records_to_arrays
from smlocal.data.recordio import encode_records, iter_records
from smlocal.errors import CustomerError
from smlocal.serving.codecs.base import Columns, Features, bad_payload, require_finite, require_rows

MEDIA_TYPE = "application/x-recordio-protobuf"


def decode(body: bytes, params: dict[str, str] | None = None) -> Features:
    try:
        payloads = list(iter_records(io.BytesIO(body), source="the request body"))
        require_rows(len(payloads))
        features, _labels = records_to_arrays(payloads)
    except CustomerError as exc:  # DataFormatError / RecordDecodeError, with record or byte offset
        if str(exc).startswith("unable to evaluate"):
            raise
        raise bad_payload(str(exc)) from None
    require_finite(features)
    return features


def encode(columns: Columns) -> bytes:
    return encode_records(label_records(columns))
