"""Channels refusing bad input: unsupported or mismatched content types, corrupt or truncated RecordIO, NaN
values, ragged CSV, missing or empty channels; each a CustomerError (exit 2) naming the channel, file and place."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.data.channels import open_channel
from smlocal.data.protobuf import sparse_to_records
from smlocal.data.recordio import encode_records
from smlocal.errors import CustomerError
from tests.datasets import random_dataset, recordio_of, recordio_record_size
from tests.helpers import training_env

CANONICAL = ("Unable to read data channel 'train'. Requested content-type is '{ct}'. "
             "Please verify the data matches the requested content-type.")
NAN = "Found missing (NaN) values. Please remove any missing (NaN) values in the input data."
RECORDIO = "application/x-recordio-protobuf"


def _error(base, channels, files, batch_size=10) -> CustomerError:
    """The channel's error, the same whether the pass is read ahead on a thread or in the caller's."""
    env = training_env(base, channels, files)
    errors = []
    for read_ahead in (True, False):
        with pytest.raises(CustomerError) as info:
            list(open_channel(env, "train").batches(batch_size, read_ahead=read_ahead))
        assert info.value.exit_code == 2
        errors.append(info.value)
    assert str(errors[0]) == str(errors[1])
    return errors[0]


def test_unsupported_content_type(base):
    env = training_env(base, {"train": {"ContentType": "application/json"}}, {"train/d.json": b"{}"})
    with pytest.raises(CustomerError) as info:
        open_channel(env, "train")
    assert str(info.value).startswith(CANONICAL.format(ct="application/json"))
    assert info.value.exit_code == 2


def test_csv_data_under_recordio_content_type(base):
    err = _error(base, {"train": {}}, {"train/data.csv": b"1,2,3\n4,5,6\n"})
    msg = str(err)
    assert msg.startswith(CANONICAL.format(ct=RECORDIO))
    assert "data.csv' at byte offset 0" in msg


def test_recordio_data_under_csv_content_type(base):
    x, y = random_dataset(3)
    err = _error(base, {"train": {"ContentType": "text/csv"}}, {"train/data.pbr": recordio_of(x, y)})
    msg = str(err)
    assert msg.startswith(CANONICAL.format(ct="text/csv"))
    assert "data.pbr' line 2" in msg


def test_corrupt_record_in_second_file_names_file_and_offset(base):
    x, y = random_dataset(10)
    good = recordio_of(x, y)
    bad = recordio_of(x[:2], y[:2]) + b"\xde\xad\xbe\xef" * 4
    err = _error(base, {"train": {}}, {"train/1-good": good, "train/2-bad": bad})
    assert f"2-bad' at byte offset {2 * recordio_record_size()}" in str(err) and "0xEFBEADDE" in str(err)


def test_truncated_last_record(base):
    x, y = random_dataset(10)
    data = recordio_of(x, y)
    err = _error(base, {"train": {}}, {"train/part": data[:-5]})
    where = f"'{base / 'input/data/train/part'}' at byte offset {9 * recordio_record_size()}"
    assert "Truncated RecordIO record" in str(err) and where in str(err)


def test_unparsable_protobuf_names_record_offset(base):
    data = recordio_of(*random_dataset(2)) + encode_records([b"\xff\xff\xff\xff"])
    err = _error(base, {"train": {}}, {"train/part": data})
    assert f"record at byte offset {2 * recordio_record_size()} is not a valid aialgs.data.Record" in str(err)


def test_nan_in_recordio_names_channel_file_and_record(base):
    x, y = random_dataset(10)
    x[7, 1] = np.nan
    err = _error(base, {"train": {}}, {"train/nan.pbr": recordio_of(x, y)}, batch_size=3)
    msg = str(err)
    assert msg.startswith("Channel 'train'") and msg.endswith(NAN)
    assert f"nan.pbr', record at byte offset {7 * recordio_record_size()}" in msg


def test_nan_label_is_reported_too(base):
    x, y = random_dataset(4)
    y[2] = np.nan
    err = _error(base, {"train": {}}, {"train/l.pbr": recordio_of(x, y)})
    assert f"record at byte offset {2 * recordio_record_size()}" in str(err) and NAN in str(err)


def test_nan_in_sparse_data(base):
    csr = sp.csr_matrix(np.eye(4, dtype=np.float32))
    csr.data[3] = np.nan
    err = _error(base, {"train": {}}, {"train/s.pbr": encode_records(sparse_to_records(csr))})
    assert NAN in str(err) and "s.pbr'" in str(err)


def test_nan_in_csv_names_line(base):
    err = _error(base, {"train": {"ContentType": "text/csv"}}, {"train/d.csv": b"1,2\n3,4\n\n0,nan\n"})
    assert "d.csv' line 4" in str(err) and str(err).endswith(NAN)


def test_empty_csv_cell_is_a_missing_value(base):
    err = _error(base, {"train": {"ContentType": "text/csv"}}, {"train/d.csv": b"1,2,3\n4,,6\n"})
    assert "d.csv' line 2 column 2" in str(err) and str(err).endswith(NAN)


@pytest.mark.parametrize("data, fragment", [
    (b"label,a,b\n1,2,3\n", "line 1 is not numeric"),
    (b"1,2,3\n4,x,6\n", "line 2, column 2: the non-numeric cell 'x'"),
    (b"1,2,3\n4,5\n", "line 2 has 2 columns but the rows before it have 3"),
])
def test_bad_csv_is_named_with_the_canonical_message(base, data, fragment):
    err = _error(base, {"train": {"ContentType": "text/csv"}}, {"train/bad.csv": data})
    assert str(err).startswith(CANONICAL.format(ct="text/csv"))
    assert fragment in str(err) and "bad.csv'" in str(err)


def test_csv_width_change_between_files(base):
    err = _error(base, {"train": {"ContentType": "text/csv"}}, {"train/a.csv": b"1,2,3\n", "train/b.csv": b"1,2\n"})
    assert "b.csv' line 1 has 2 columns" in str(err)


def test_label_only_csv(base):
    err = _error(base, {"train": {"ContentType": "text/csv;label_size=1"}}, {"train/a.csv": b"1\n2\n"})
    assert "no feature column is left" in str(err)


def test_feature_dim_change_between_files(base):
    files = {"train/a": recordio_of(*random_dataset(3, d=3)), "train/b": recordio_of(*random_dataset(3, d=4))}
    err = _error(base, {"train": {}}, files)
    assert "has 4 features but earlier data of the channel has 3" in str(err) and "/b'" in str(err)


def test_labeled_and_unlabeled_files_mixed(base):
    files = {"train/a": recordio_of(*random_dataset(3)), "train/b": recordio_of(random_dataset(3)[0])}
    err = _error(base, {"train": {}}, files)
    assert "unlabeled but earlier data of the channel is not" in str(err)


def test_missing_channel_directory(base):
    env = training_env(base)
    with pytest.raises(CustomerError, match=r"No data found for channel 'train'.*does not exist") as info:
        open_channel(env, "train")
    assert info.value.exit_code == 2


def test_channel_with_only_hidden_files(base):
    env = training_env(base, files={"train/.DS_Store": b"x", "train/.git/config": b"y"})
    with pytest.raises(CustomerError, match=r"No data found for channel 'train'.*holds no files"):
        open_channel(env, "train")


def test_channel_with_empty_files(base):
    err = _error(base, {"train": {}}, {"train/empty": b""})
    assert "Channel 'train' holds no records" in str(err)


def test_channel_not_configured(base):
    env = training_env(base, {"train": {}}, {"train/x": recordio_of(*random_dataset(2))})
    with pytest.raises(CustomerError, match=r"Channel 'test' is required but not provided.*configured channels: train"):
        open_channel(env, "test")


def test_invalid_label_size(base):
    env = training_env(base, {"train": {"ContentType": "text/csv;label_size=2"}}, {"train/a.csv": b"1,2,3\n"})
    with pytest.raises(CustomerError, match="label_size=2"):
        open_channel(env, "train")


INF = "Found infinite values. Please remove or replace any infinite values in the input data."


@pytest.mark.parametrize("cell", [b"inf", b"-inf", b"1e400", b"1e39"])  # 1e39: beyond float32
def test_infinite_csv_cell_names_line_and_column(base, cell):
    err = _error(base, {"train": {"ContentType": "text/csv"}}, {"train/d.csv": b"1,2,3\n4,5,6\n7,8," + cell + b"\n"})
    assert "d.csv' line 3, column 3" in str(err) and str(err).endswith(INF)


def test_infinite_csv_label_names_column_1(base):
    err = _error(base, {"train": {"ContentType": "text/csv"}}, {"train/d.csv": b"1,2\ninf,4\n"})
    assert "d.csv' line 2, column 1" in str(err) and str(err).endswith(INF)


def test_infinite_recordio_feature_names_record_and_feature(base):
    x, y = random_dataset(10)
    x[6, 2] = -np.inf
    err = _error(base, {"train": {}}, {"train/i.pbr": recordio_of(x, y)}, batch_size=4)
    assert f"i.pbr', record at byte offset {6 * recordio_record_size()}, feature 2" in str(err)
    assert str(err).endswith(INF)


def test_infinite_recordio_label(base):
    x, y = random_dataset(5)
    y[3] = np.inf
    err = _error(base, {"train": {}}, {"train/l.pbr": recordio_of(x, y)})
    assert f"record at byte offset {3 * recordio_record_size()}, label" in str(err) and str(err).endswith(INF)


def test_infinite_sparse_value(base):
    csr = sp.csr_matrix(np.eye(4, dtype=np.float32))
    csr.data[2] = np.inf
    err = _error(base, {"train": {}}, {"train/s.pbr": encode_records(sparse_to_records(csr))})
    assert ", feature 2: " in str(err) and str(err).endswith(INF)
