"""The /opt/ml contract: base dir, paths, content types and the three config files read into dataclasses."""
from __future__ import annotations

import json

import pytest

from smlocal.environment import (CSV, RECORDIO_PROTOBUF, ChannelConfig, Paths, base_dir, load_training_env,
                                 parse_content_type)
from smlocal.errors import CustomerError
from tests.helpers import write_config


def test_base_dir_resolved_when_called(monkeypatch, tmp_path):
    monkeypatch.delenv("SAGEMAKER_BASE_DIR", raising=False)
    assert str(base_dir()) == "/opt/ml"
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))
    assert base_dir() == tmp_path


def test_paths_layout(tmp_path):
    p = Paths(tmp_path)
    assert p.config_dir == tmp_path / "input" / "config"
    assert p.channel_dir("train") == tmp_path / "input" / "data" / "train"
    assert p.pipe_path("train", 3) == tmp_path / "input" / "data" / "train_3"
    assert p.failure_file == tmp_path / "output" / "failure"
    assert p.model_dir == tmp_path / "model"


@pytest.mark.parametrize("value,expected", [
    (None, (RECORDIO_PROTOBUF, {})),
    ("", (RECORDIO_PROTOBUF, {})),
    ("text/csv", (CSV, {})),
    ("text/csv;label_size=0", (CSV, {"label_size": "0"})),
    ("Text/CSV; label_size=1; charset=utf-8", (CSV, {"label_size": "1", "charset": "utf-8"})),
])
def test_parse_content_type(value, expected):
    assert parse_content_type(value) == expected


def test_load_training_env(base):
    write_config(base, {"k": 3, "feature_dim": 4},
                 {"train": {"ContentType": "text/csv;label_size=0", "TrainingInputMode": "Pipe",
                            "S3DistributionType": "ShardedByS3Key", "RecordWrapperType": "None"},
                  "test": {"TrainingInputMode": "File"}},
                 hosts=("algo-1", "algo-2"), current="algo-2")
    env = load_training_env(base)
    assert env.hyperparameters == {"k": "3", "feature_dim": "4"}
    train = env.channels["train"]
    assert train.is_pipe and train.is_csv and train.label_size() == 0
    assert train.distribution == "ShardedByS3Key"
    assert env.channels["test"].content_type == RECORDIO_PROTOBUF  # default when ContentType is absent
    assert env.resources.hosts == ("algo-1", "algo-2") and env.resources.current_host == "algo-2"
    assert env.model_file == base / "model" / "model_algo-2"


def test_bad_config_names_the_file(base):
    (base / "input" / "config" / "hyperparameters.json").write_text("{not json")
    with pytest.raises(CustomerError, match="hyperparameters.json is not valid JSON"):
        load_training_env(base)


def test_unknown_current_host(base):
    (base / "input" / "config" / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-9", "hosts": ["algo-1"]}))
    with pytest.raises(CustomerError, match="algo-9"):
        load_training_env(base)


def test_bad_label_size_names_channel():
    ch = ChannelConfig("train", CSV, {"label_size": "x"})
    with pytest.raises(CustomerError, match="channel 'train'"):
        ch.label_size()
