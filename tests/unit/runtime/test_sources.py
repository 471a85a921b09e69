"""Channel listing: sources is the one reader of local channels, once per job, and checks what it finds."""
from __future__ import annotations

import argparse
import json

import pytest

from smlocal.data import channels as data_channels
from smlocal.errors import CustomerError
from smlocal.runtime import commands
from smlocal.runtime.jobflags import spec_from_flags
from smlocal.runtime.jobspec import parse_job
from smlocal.runtime.s3.client import LazyClient
from smlocal.runtime.sources import local_files, resolve_channels


@pytest.fixture
def listings(monkeypatch):
    """Every directory listed by the channel rule (``data.channels.data_files``), in call order."""
    calls = []
    real = data_channels.data_files
    monkeypatch.setattr(data_channels, "data_files", lambda root: calls.append(root) or real(root))
    return calls


def _job_file(tmp_path, train, test) -> str:
    def channel(name, path):
        return {"ChannelName": name, "DataSource": {"S3DataSource": {"S3Uri": str(path)}}}

    body = {"AlgorithmSpecification": {"AlgorithmName": "kmeans"}, "HyperParameters": {"k": "2"},
            "InputDataConfig": [channel("train", train), channel("test", test)],
            "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")}}
    job = tmp_path / "job.json"
    job.write_text(json.dumps(body))
    return str(job)


def test_a_job_run_lists_each_channel_once(tmp_path, listings):
    train, test = tmp_path / "train", tmp_path / "test"
    for d in (train, test):
        d.mkdir()
        (d / "part-0.csv").write_text("1,2\n")
    parser = argparse.ArgumentParser(prog="smlocal")
    commands.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", "--job", _job_file(tmp_path, train, test), "--instance-count", "1"])
    spec = commands._train_spec(args)  # what `smlocal train --job` builds before running
    assert listings == []  # neither the spec nor its overrides read a channel
    objects, is_dir = resolve_channels(spec, LazyClient())  # what run_training hands the plan
    assert listings == [train, test]
    assert [o.key for o in objects["train"]] == ["part-0.csv"] and is_dir == {"train": True, "test": True}


def test_empty_channel_is_refused_when_listed(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".DS_Store").write_text("x")
    spec = spec_from_flags(algorithm="kmeans", image=None, channels=[f"train={tmp_path / 'empty'}"],
                           output=str(tmp_path / "o"))
    with pytest.raises(CustomerError, match=r"InputDataConfig\[0\].*'train' has no data files"):
        resolve_channels(spec, LazyClient())


def test_sharded_channel_needs_a_file_per_host(tmp_path):
    data = tmp_path / "train"
    data.mkdir()
    for i in range(2):
        (data / f"part-{i}.csv").write_text("1\n")
    spec = spec_from_flags(algorithm="kmeans", image=None, channels=[f"train={data}"], instance_count=3,
                           distributions=["train=ShardedByS3Key"], output=str(tmp_path / "o"))
    with pytest.raises(CustomerError, match=r"InputDataConfig\[0\]\.DataSource\.S3DataSource\."
                                            r"S3DataDistributionType: ShardedByS3Key over 3 hosts needs at least 3 "
                                            r"files; channel 'train' has 2"):
        resolve_channels(spec, LazyClient())
    objects, _ = resolve_channels(spec.with_overrides(instance_count=2), LazyClient())
    assert [o.key for o in objects["train"]] == ["part-0.csv", "part-1.csv"]


def test_local_files_skip_hidden_ones_and_a_file_is_one_object(tmp_path):
    (tmp_path / "d" / ".git").mkdir(parents=True)
    (tmp_path / "d" / ".git" / "x").write_text("x")
    (tmp_path / "d" / "b.csv").write_text("1\n")
    (tmp_path / "d" / "a").mkdir()
    (tmp_path / "d" / "a" / "z.csv").write_text("1\n")
    assert [k for k, _ in local_files(tmp_path / "d")] == ["a/z.csv", "b.csv"]
    assert local_files(tmp_path / "d" / "b.csv") == [("b.csv", str(tmp_path / "d" / "b.csv"))]


def test_parse_job_reads_no_channel(tmp_path, listings):
    data = tmp_path / "train"
    data.mkdir()
    parse_job({"AlgorithmSpecification": {"AlgorithmName": "kmeans"}, "OutputDataConfig": {"S3OutputPath": "o"},
               "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": str(data)}}}]})
    assert listings == []  # an empty directory is refused when the job lists it, not here
