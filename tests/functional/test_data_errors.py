"""Bad channel data through the real ``container/train`` entry point: ``output/failure`` + exit 2.

Complements tests/unit/data/test_channel_errors.py (every message there) and tests/functional/test_kmeans_train.py
(NaN in RecordIO, content-type mismatch, empty/missing channel): here the CSV and framing errors.
"""
from __future__ import annotations

import numpy as np
import pytest

from smlocal.data.protobuf import dense_to_records
from smlocal.data.recordio import encode_records
from tests.helpers import assert_customer_error, run_container, write_config

NAN = "Found missing (NaN) values. Please remove any missing (NaN) values in the input data."
INF = "Found infinite values. Please remove or replace any infinite values in the input data."
CSV_MESSAGE = ("Customer Error: Unable to read data channel 'train'. Requested content-type is 'text/csv'. "
               "Please verify the data matches the requested content-type.")


def train(base, data: bytes, content_type: str, mode: str = "File", env: dict | None = None):
    write_config(base, {"k": "2", "feature_dim": "3"}, {"train": {"ContentType": content_type,
                                                                   "TrainingInputMode": mode}})
    if mode == "File":
        (base / "input/data/train").mkdir(parents=True, exist_ok=True)
        (base / "input/data/train/part-0").write_bytes(data)
    return run_container("train", base, algorithm="kmeans", env=env, timeout=120)


@pytest.mark.parametrize("data, fragments", [
    (b"label,a,b,c\n1,2,3,4\n", [CSV_MESSAGE, "part-0' line 1 is not numeric", "header"]),
    (b"1,2,3,4\n1,2,oops,4\n", [CSV_MESSAGE, "part-0' line 2, column 3: the non-numeric cell 'oops'"]),
    (b"1,2,3,4\n1,2,3\n", [CSV_MESSAGE, "part-0' line 2 has 3 columns but the rows before it have 4"]),
    (b"1,2,3,4\n1,2,nan,4\n", ["Channel 'train'", "part-0' line 2", NAN]),
    (b"1,2,3,4\n1,2,1e400,4\n", ["Channel 'train'", "part-0' line 2, column 3", INF]),
])
def test_bad_csv(base, data, fragments):
    assert_customer_error(train(base, data, "text/csv;label_size=1"), *fragments)


def test_truncated_recordio(base):
    data = encode_records(dense_to_records(np.ones((5, 3), dtype=np.float32)))
    result = train(base, data[:-6], "application/x-recordio-protobuf")
    assert_customer_error(result, "Unable to read data channel 'train'", "Truncated RecordIO record",
                          f"part-0' at byte offset {4 * len(data) // 5}")


def test_infinite_recordio_value(base):
    x = np.ones((5, 3), dtype=np.float32)
    x[3, 1] = np.inf
    data = encode_records(dense_to_records(x))
    assert_customer_error(train(base, data, "application/x-recordio-protobuf"), "Channel 'train'",
                          f"part-0', record at byte offset {3 * len(data) // 5}, feature 1", INF)


def test_pipe_fifo_never_appears(base):
    result = train(base, b"", "application/x-recordio-protobuf", mode="Pipe",
                   env={"SMLOCAL_PIPE_WAIT_SECONDS": "0.5"})
    assert_customer_error(result, "Pipe mode channel 'train'", "train_0", "did not appear within 0.5 seconds")
