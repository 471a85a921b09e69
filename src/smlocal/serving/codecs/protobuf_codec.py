"""``application/x-recordio-protobuf``: RecordIO-framed ``aialgs.data.Record``s, dense or sparse.

Responses: one Record per input row whose ``label`` map holds the output columns as float32 tensors
(SageMaker developer guide, "Common Data Formats for Inference"), exactly what the SDK's
``RecordDeserializer`` reads back.
"""
from __future__ import annotations

from smlocal.data.protobuf import decode_fixed_block, label_records, records_to_arrays
from smlocal.data.recordio import DataFormatError, FixedRun, encode_records, iter_frames
from smlocal.serving.codecs.base import Columns, Features, bad_payload, require_finite, require_rows

MEDIA_TYPE = "application/x-recordio-protobuf"


def decode(body: bytes, params: dict[str, str] | None = None) -> Features:
    try:
        frames = list(iter_frames([body], source="the request body"))
        require_rows(sum(map(len, frames)))
        decoded = None
        if len(frames) == 1 and isinstance(frames[0], FixedRun):  # the common request: equal dense rows
            decoded = decode_fixed_block(frames[0].payloads)  # in place, no bytes object per record
        if decoded is None:
            decoded = records_to_arrays([payload for f in frames for payload in f.to_bytes()])
        features = decoded[0]
    except DataFormatError as exc:  # RecordDecodeError included: names the record or byte offset
        raise bad_payload(str(exc)) from None
    require_finite(features)
    return features


def encode(columns: Columns) -> bytes:
    return encode_records(label_records(columns))
