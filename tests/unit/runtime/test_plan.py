"""The plan is pure: specs in, per-host trees/files/env/mounts/pipes out, without touching disk."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from smlocal.environment import Paths
from smlocal.errors import CustomerError
from smlocal.runtime.jobspec import ChannelSpec, JobSpec
from smlocal.runtime.plan import (CONTAINER, DataObject, PipeFeed, name_user_sources, plan_training, shard,
                                  shard_objects)

OBJECTS = tuple(DataObject(f"part-{i}.csv", f"/data/train/part-{i}.csv", 10) for i in range(5))


def spec(**changes):
    base = dict(
        job_name="job-1", output_path="/out", algorithm="kmeans", hyperparameters={"k": "3", "feature_dim": "2"},
        channels=(
            ChannelSpec("train", "/data/train", "text/csv;label_size=0", "File", "ShardedByS3Key"),
            ChannelSpec("test", "/data/test", None, "Pipe", "FullyReplicated", "Gzip", "RecordIO", 5),
        ),
        instance_count=2, instance_type="ml.m5.xlarge", environment={"OMP_NUM_THREADS": "2"},
    )
    base.update(changes)
    return JobSpec(**base)


def test_config_files_as_sagemaker_writes_them(tmp_path):
    job_dir = tmp_path / "job-1"
    plan = plan_training(spec(), job_dir, {"train": OBJECTS, "test": OBJECTS[:2]},
                         ps_port=9100, source_is_dir={"train": True, "test": True})
    assert list(tmp_path.iterdir()) == []  # planning writes nothing, not even the job's directory
    h1, h2 = plan.hosts
    assert (h1.host, h1.root) == ("algo-1", str(job_dir / "hosts" / "algo-1"))
    hps = json.loads(h1.files["input/config/hyperparameters.json"])
    assert hps == {"k": "3", "feature_dim": "2"}
    idc = json.loads(h1.files["input/config/inputdataconfig.json"])
    assert idc == {
        "train": {"ContentType": "text/csv;label_size=0", "TrainingInputMode": "File",
                  "S3DistributionType": "ShardedByS3Key", "RecordWrapperType": "None"},
        "test": {"TrainingInputMode": "Pipe", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "RecordIO"},
    }
    rc2 = json.loads(h2.files["input/config/resourceconfig.json"])
    assert rc2["current_host"] == "algo-2" and rc2["hosts"] == ["algo-1", "algo-2"]
    assert rc2["network_interface_name"] == "eth0" and rc2["current_instance_type"] == "ml.m5.xlarge"
    assert rc2["instance_groups"][0]["hosts"] == ["algo-1", "algo-2"]
    assert h1.env["SMLOCAL_ALGORITHM"] == "kmeans" and h1.env["TRAINING_JOB_NAME"] == "job-1"
    assert h1.env["OMP_NUM_THREADS"] == "2" and h2.env["CURRENT_HOST"] == "algo-2"
    assert h1.env["DMLC_PS_ROOT_URI"] == "127.0.0.1" and h1.env["DMLC_PS_ROOT_PORT"] == "9100"
    assert "SAGEMAKER_BASE_DIR" not in h1.env  # the process backend adds it; in Docker it is /opt/ml
    assert plan.model_tar == job_dir / "output" / "model.tar.gz"


def test_the_plan_reads_no_disk_and_uses_the_containers_paths():
    # the channels' sources do not exist: the plan works from the listing it is handed alone
    plan = plan_training(spec(), "/nonexistent/job-1", {"train": OBJECTS, "test": OBJECTS[:2]},
                         source_is_dir={"train": True})
    h1 = plan.hosts[0]
    assert h1.dirs[:5] == ("input/config", "input/data", "model", "output/data", "checkpoints")
    assert h1.paths == Paths(Path("/nonexistent/job-1/hosts/algo-1"))  # the container's own layout
    assert str(h1.paths.failure_file) == "/nonexistent/job-1/hosts/algo-1/output/failure"
    assert str(CONTAINER.model_dir) == "/opt/ml/model"
    (feed,) = h1.pipes
    assert feed.fifo_path(2) == h1.paths.pipe_path("test", 2)


def test_sharded_file_mode_gives_each_host_its_files():
    plan = plan_training(spec(), "/j", {"train": OBJECTS, "test": OBJECTS[:2]}, source_is_dir={"train": True})
    h1, h2 = plan.hosts
    keys1 = [o.key for o in h1.channel_files["train"]]
    keys2 = [o.key for o in h2.channel_files["train"]]
    assert keys1 == ["part-0.csv", "part-2.csv", "part-4.csv"] and keys2 == ["part-1.csv", "part-3.csv"]
    assert sorted(keys1 + keys2) == [o.key for o in OBJECTS]
    mounts2 = [(m.source, m.container_path) for m in h2.mounts]
    assert mounts2 == [("/data/train/part-1.csv", "/opt/ml/input/data/train/part-1.csv"),
                       ("/data/train/part-3.csv", "/opt/ml/input/data/train/part-3.csv")]
    assert all(m.read_only for m in h2.mounts)


def test_fully_replicated_directory_is_mounted_whole():
    s = spec(channels=(ChannelSpec("train", "/data/train", None, "File", "FullyReplicated"),), instance_count=2)
    plan = plan_training(s, "/j", {"train": OBJECTS}, source_is_dir={"train": True})
    for host in plan.hosts:
        assert [(m.source, m.target) for m in host.mounts] == [("/data/train", "input/data/train")]
        assert host.channel_files["train"] == OBJECTS
    # a single file (not a directory) is mounted file by file
    plan = plan_training(s, "/j", {"train": OBJECTS[:1]}, source_is_dir={"train": False})
    assert [m.target for m in plan.hosts[0].mounts] == ["input/data/train/part-0.csv"]


def test_pipe_feeds_per_host():
    plan = plan_training(spec(), "/j", {"train": OBJECTS, "test": OBJECTS[:2]})
    (feed,) = plan.hosts[1].pipes
    assert feed.channel == "test" and feed.fifo_dir == "/j/hosts/algo-2/input/data"
    assert (feed.compression, feed.record_wrapper, feed.shuffle_seed) == ("Gzip", "RecordIO", 5)
    assert str(feed.fifo_path(3)) == "/j/hosts/algo-2/input/data/test_3"
    assert not plan.hosts[1].mounts or all("test" not in m.target for m in plan.hosts[1].mounts)


def test_shuffle_and_shard_per_epoch():
    feeds = [PipeFeed("train", "/x", OBJECTS, host_index=i, host_count=2, sharded=True, shuffle_seed=11)
             for i in range(2)]
    orders = []
    for epoch in range(4):
        mine = [feed.objects_for_epoch(epoch) for feed in feeds]
        # every epoch, the hosts together get every object exactly once
        assert sorted(o.key for part in mine for o in part) == [o.key for o in OBJECTS]
        assert feeds[0].objects_for_epoch(epoch) == mine[0]  # deterministic
        orders.append(tuple(o.key for part in mine for o in part))
    assert len(set(orders)) > 1  # the order changes between epochs
    plain = PipeFeed("train", "/x", OBJECTS)
    assert plain.objects_for_epoch(0) == plain.objects_for_epoch(5) == OBJECTS
    assert shard(OBJECTS, 2, 3) == (OBJECTS[2],)


def test_shard_objects_is_pure_round_robin_over_any_sequence():
    objects = [f"part-{i}" for i in range(5)]
    shards = [shard_objects(objects, i, 2, "ShardedByS3Key") for i in range(2)]
    assert shards == [["part-0", "part-2", "part-4"], ["part-1", "part-3"]]
    assert sorted(shards[0] + shards[1]) == objects
    assert shard_objects(objects, 1, 2, "ShardedByS3Key") == shards[1]  # deterministic
    assert shard_objects(tuple(objects), 1, 3, "FullyReplicated") == objects
    with pytest.raises(CustomerError, match="at least 3 objects; channel 'train' has 2"):
        shard_objects(objects[:2], 0, 3, "ShardedByS3Key", source="'train'")
    with pytest.raises(CustomerError, match="S3DataDistributionType"):
        shard_objects(objects, 0, 1, "Sharded")
    with pytest.raises(ValueError):
        shard_objects(objects, 2, 2, "FullyReplicated")


def test_messages_name_the_users_paths_not_the_hosts_copies():
    whole = ChannelSpec("train", "/data/train", None, "File", "FullyReplicated")
    one = ChannelSpec("train2", "/data/t2/rows.csv", None, "File", "FullyReplicated")
    plan = plan_training(spec(channels=(whole, one), instance_count=1), "/jobs/j",
                         {"train": OBJECTS, "train2": (DataObject("rows.csv", "/data/t2/rows.csv"),)},
                         source_is_dir={"train": True})
    sources = plan.hosts[0].user_sources()
    tree = "/jobs/j/hosts/algo-1/input/data"
    text = (f"file '{tree}/train/part-1.csv' line 2; '/opt/ml/input/data/train2/rows.csv' (Docker); "
            f"{tree}/train2/rows.csv: bad; {tree}/train_x/a untouched")
    assert name_user_sources(text, sources) == (
        "file '/data/train/part-1.csv' line 2; '/data/t2/rows.csv' (Docker); /data/t2/rows.csv: bad; "
        f"{tree}/train_x/a untouched")
    assert name_user_sources("no paths here", sources) == "no paths here"


def test_file_mode_gzip_channels_are_planned_as_gunzipped_copies():
    objects = (DataObject("a.csv.gz", "/d/a.csv.gz"), DataObject("b", "/d/b"), DataObject("b.gz", "/d/b.gz"))
    gz = ChannelSpec("train", "/d", None, "File", "FullyReplicated", "Gzip")
    h1 = plan_training(spec(channels=(gz,), instance_count=1), "/jobs/j", {"train": objects},
                       source_is_dir={"train": True}).hosts[0]
    assert h1.mounts == () and h1.placed == ()  # nothing linked as it is: the container reads plain data
    assert [(m.source, m.target) for m in h1.gunzipped] == [
        ("/d/a.csv.gz", "input/data/train/a.csv"), ("/d/b", "input/data/train/b"),
        ("/d/b.gz", "input/data/train/b.gz")]  # ".gz" dropped unless another file has that name
    assert "input/data/train" in h1.dirs
    assert "CompressionType" not in h1.files["input/config/inputdataconfig.json"]
