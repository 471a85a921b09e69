"""s3:// in the job spec and the plan, without any S3 server: parsing, defaults, File-mode placement."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from smlocal.errors import CustomerError
from smlocal.runtime.jobflags import spec_from_flags
from smlocal.runtime.jobspec import ChannelSpec, JobSpec, parse_job
from smlocal.runtime.layout import materialize
from smlocal.runtime.plan import DataObject, plan_training, shard, shard_objects
from smlocal.runtime.s3.client import LazyClient


def body(channel_source: dict, output: str = "s3://out-bucket/jobs", **extra) -> dict:
    return {
        "TrainingJobName": "s3-job",
        "AlgorithmSpecification": {"AlgorithmName": "kmeans", "TrainingInputMode": "Pipe"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": channel_source}}],
        "OutputDataConfig": {"S3OutputPath": output},
        **extra,
    }


def test_s3_channels_and_output_are_kept_as_uris(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = parse_job(body({"S3DataType": "ManifestFile", "S3Uri": "S3://data/train/.amazon.manifest",
                           "S3DataDistributionType": "ShardedByS3Key"}))
    (ch,) = spec.channels
    assert (ch.source, ch.data_type, ch.is_s3, ch.is_pipe) == ("s3://data/train/.amazon.manifest", "ManifestFile",
                                                               True, True)
    assert spec.s3_output_path == "s3://out-bucket/jobs"
    # the local record, logs and artifact copies go to ./smlocal-output unless told otherwise
    assert spec.output_path == str(tmp_path / "smlocal-output")
    assert parse_job(body({"S3Uri": "s3://data/train/"}), local_output="elsewhere").job_dir == \
        tmp_path / "elsewhere" / "s3-job"
    # --output (here a local directory) wins over S3OutputPath: nothing is uploaded then
    local = parse_job(body({"S3Uri": "s3://data/train/"}), output_path=str(tmp_path / "o"))
    assert (local.s3_output_path, local.output_path) == (None, str(tmp_path / "o"))


@pytest.mark.parametrize("source, field", [
    ({"S3Uri": "s3:///train"}, "S3Uri"),
    ({"S3Uri": "s3://bucket/train", "S3DataType": "AugmentedManifestFile"}, "S3DataType"),
    ({"S3Uri": "/", "S3DataType": "ManifestFile"}, "S3DataType"),  # a manifest must be in S3
])
def test_bad_s3_sources_name_the_field(source, field):
    with pytest.raises(CustomerError) as info:
        parse_job(body(source))
    assert f"InputDataConfig[0].DataSource.S3DataSource.{field}" in str(info.value)


def test_flags_take_s3_uris_and_see_the_sdk_manifest(tmp_path):
    spec = spec_from_flags(algorithm="kmeans", image=None, output="s3://b/out", local_output=str(tmp_path),
                           channels=["train=s3://b/kmeans/train/.amazon.manifest", "test=s3://b/test/",
                                     "other=s3://b/m.json"], data_types=["other=ManifestFile"])
    assert [(c.name, c.data_type) for c in spec.channels] == [
        ("train", "ManifestFile"), ("test", "S3Prefix"), ("other", "ManifestFile")]
    assert spec.s3_output_path == "s3://b/out" and spec.output_path == str(tmp_path)
    with pytest.raises(CustomerError, match="no --channel defines"):
        spec_from_flags(algorithm="kmeans", image=None, output="o", channels=["a=s3://b/x"],
                        data_types=["b=ManifestFile"])


def test_one_sharding_rule():
    objects = tuple(DataObject(f"k{i}", f"s3://b/k{i}") for i in range(5))
    for host in range(3):
        assert shard(objects, host, 3) == tuple(shard_objects(objects, host, 3, "ShardedByS3Key"))
    assert shard(objects, 1, 2) == objects[1::2]


def test_s3_file_channels_are_placed_as_real_files_whatever_the_backend(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    objects = []
    for i in range(3):
        (cache / f"h{i}").write_bytes(b"x" * (i + 1))
        objects.append(DataObject(f"sub/part-{i}.csv", str(cache / f"h{i}"), i + 1))
    spec = JobSpec(job_name="j", output_path=str(tmp_path), instance_count=2, channels=(
        ChannelSpec("train", "s3://b/train/", None, "File", "ShardedByS3Key"),))
    plan = plan_training(spec, tmp_path / "j", {"train": tuple(objects)})
    h1, h2 = plan.hosts
    assert not h1.mounts and [p.target for p in h1.placed] == ["input/data/train/sub/part-0.csv",
                                                               "input/data/train/sub/part-2.csv"]
    assert [p.target for p in h2.placed] == ["input/data/train/sub/part-1.csv"]
    for mode in ("symlink", "mountpoint"):  # process and Docker backends
        materialize(h2, mounts_as=mode)
        placed = tmp_path / "j" / "hosts" / "algo-2" / "input" / "data" / "train" / "sub" / "part-1.csv"
        assert not placed.is_symlink() and os.path.samefile(placed, cache / "h1")


def test_lazy_client_makes_one_client_and_only_when_asked():
    # a fresh interpreter: building the command's client holder and a local spec imports no boto3
    code = ("import sys; from smlocal.runtime.s3.client import LazyClient; from smlocal.runtime import commands, jobs, "
            "sources; c = LazyClient(); assert not c.created; "
            "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    client = LazyClient("http://127.0.0.1:1")  # creating a client makes no request
    first = client.get()
    assert client.created and client.get() is first and first.meta.endpoint_url == "http://127.0.0.1:1"
