"""Batch transform splitting, batching and parameter precedence (pure parts, no server)."""
from __future__ import annotations

import io

import pytest

from smlocal.data.recordio import encode_records, iter_records
from smlocal.errors import CustomerError
from smlocal.runtime.transform import batch_payloads, endpoint_env, resolve_params, split_records


def test_split_none_line_recordio():
    data = b"1,2\n3,4\n5,6"
    assert list(split_records(io.BytesIO(data), "None")) == [data]
    assert list(split_records(io.BytesIO(data), "Line")) == [b"1,2\n", b"3,4\n", b"5,6"]
    payloads = [b"a", b"bb" * 10, b"ccc"]
    records = list(split_records(io.BytesIO(encode_records(payloads)), "RecordIO"))
    assert len(records) == 3
    # each record keeps its framing, so any batch of them is a valid RecordIO stream
    assert list(iter_records(io.BytesIO(b"".join(records[1:])))) == payloads[1:]


def test_bad_recordio_names_the_file():
    with pytest.raises(CustomerError, match="input.rec"):
        list(split_records(io.BytesIO(b"garbage!" * 4), "RecordIO", source="input.rec"))


def test_single_and_multi_record_batches():
    records = [b"x" * 40 + b"\n"] * 10  # 41 bytes each
    assert list(batch_payloads(records, "SingleRecord", 1000)) == records
    batches = list(batch_payloads(records, "MultiRecord", 100))
    assert [len(b) for b in batches] == [82, 82, 82, 82, 82]
    assert b"".join(batches) == b"".join(records)
    assert list(batch_payloads(records, "MultiRecord", 0)) == [b"".join(records)]  # 0: no limit
    with pytest.raises(CustomerError, match="Record 0 of f.csv is 41 bytes"):
        list(batch_payloads(records, "MultiRecord", 40, source="f.csv"))


def test_parameter_precedence():
    container = {"BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 3, "MaxConcurrentTransforms": 4}
    p = resolve_params(container=container)
    assert (p.strategy, p.max_payload_mb, p.split_type, p.assemble_with) == ("SingleRecord", 3, "None", "None")
    p = resolve_params(strategy="MultiRecord", max_payload_mb=1, container=container)
    assert (p.strategy, p.max_payload_mb) == ("MultiRecord", 1)
    p = resolve_params()
    assert (p.strategy, p.max_payload_mb) == ("MultiRecord", 6)
    with pytest.raises(CustomerError, match="MaxPayloadInMB"):
        resolve_params(max_payload_mb=101)
    with pytest.raises(CustomerError, match="SplitType"):
        resolve_params(split_type="TFRecord")
    assert resolve_params(split_type="line", assemble_with="LINE").split_type == "Line"


def test_endpoint_env():
    assert endpoint_env() == {"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "1"}
    env = endpoint_env("SingleRecord", 2)
    assert env["SAGEMAKER_BATCH_STRATEGY"] == "SINGLE_RECORD" and env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] == "2"
