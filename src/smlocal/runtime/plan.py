"""Plan a training job: JobSpec + the channels' file lists -> what each host gets. Pure: no disk access.

A backend executes the plan: it creates ``dirs``, writes ``files``, realises ``mounts`` (bind mounts in
Docker, symlinks for local processes), hard-links ``placed`` files (S3 downloads) into the tree,
starts the Pipe feeders and runs the container with ``env``.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Mapping, Sequence

from smlocal.runtime.jobspec import ChannelSpec, JobSpec
from smlocal.runtime.s3 import shard_objects

CONTAINER_BASE = PurePosixPath("/opt/ml")
HOST_DIRS = ("input/config", "input/data", "model", "output/data", "checkpoints")


@dataclass(frozen=True)
class DataObject:
    """One file of a channel: ``key`` is its path below the channel root (like an S3 key suffix).

    ``opener`` lets a remote object (S3) be streamed by the Pipe feeder without a local copy;
    ``path`` then names it (its URI) in messages.
    """

    key: str
    path: str
    size: int = 0
    opener: Callable[[], BinaryIO] | None = field(default=None, compare=False, repr=False)

    def open(self) -> BinaryIO:
        return self.opener() if self.opener is not None else open(self.path, "rb")


@dataclass(frozen=True)
class Mount:
    source: str  # absolute path on this machine
    target: str  # path below /opt/ml, POSIX, e.g. "input/data/train/part-0.csv"
    read_only: bool = True

    @property
    def container_path(self) -> str:
        return str(CONTAINER_BASE / self.target)


def shard(objects: Sequence[DataObject], host_index: int, host_count: int) -> tuple[DataObject, ...]:
    """ShardedByS3Key: objects in key order, dealt round-robin, so each host gets about 1/n of them
    (``s3.shard_objects``: one sharding rule for local and S3 channels)."""
    return tuple(shard_objects(objects, host_index, host_count, "ShardedByS3Key"))


@dataclass(frozen=True)
class PipeFeed:
    """What one host's feeder streams into ``<fifo_dir>/<channel>_<epoch>``, epoch after epoch."""

    channel: str
    fifo_dir: str  # the host's input/data directory on this machine
    objects: tuple[DataObject, ...]  # the whole channel, key order
    host_index: int = 0
    host_count: int = 1
    sharded: bool = False
    compression: str = "None"
    record_wrapper: str = "None"
    shuffle_seed: int | None = None

    def objects_for_epoch(self, epoch: int) -> tuple[DataObject, ...]:
        """This host's objects for ``epoch``: shuffled per epoch with the seed (before sharding, so
        with ShardedByS3Key the shards move across hosts between epochs, as on SageMaker)."""
        order = list(self.objects)
        if self.shuffle_seed is not None:
            random.Random(f"{self.shuffle_seed}:{epoch}").shuffle(order)
        if self.sharded:
            return shard(order, self.host_index, self.host_count)
        return tuple(order)

    def fifo_path(self, epoch: int) -> Path:
        return Path(self.fifo_dir) / f"{self.channel}_{epoch}"


@dataclass(frozen=True)
class HostPlan:
    host: str
    root: str  # this host's /opt/ml tree on this machine
    dirs: tuple[str, ...]  # relative to root
    files: Mapping[str, str]  # relative path -> text content (the config files)
    env: Mapping[str, str]  # container environment (without SAGEMAKER_BASE_DIR: backends add it)
    mounts: tuple[Mount, ...]  # File-mode channel data
    channel_files: Mapping[str, tuple[DataObject, ...]]  # channel -> objects this host gets (epoch 0)
    pipes: tuple[PipeFeed, ...]
    # files hard-linked (or copied) into the tree whatever the backend: S3 File-mode channels, whose
    # objects sit in the local download cache (source) and must appear as real files in the channel dir
    placed: tuple[Mount, ...] = ()

    @property
    def root_path(self) -> Path:
        return Path(self.root)

    @property
    def model_dir(self) -> Path:
        return self.root_path / "model"

    @property
    def output_dir(self) -> Path:
        return self.root_path / "output"

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"


@dataclass(frozen=True)
class TrainingPlan:
    spec: JobSpec
    job_dir: str
    hosts: tuple[HostPlan, ...] = field(default_factory=tuple)

    @property
    def output_dir(self) -> Path:  # <output>/<job>/output, like s3://<path>/<job>/output/
        return Path(self.job_dir) / "output"

    @property
    def model_tar(self) -> Path:
        return self.output_dir / "model.tar.gz"

    @property
    def output_tar(self) -> Path:
        return self.output_dir / "output.tar.gz"

    @property
    def record_file(self) -> Path:
        return Path(self.job_dir) / "training-job.json"

    @property
    def logs_dir(self) -> Path:
        return Path(self.job_dir) / "logs"

    @property
    def work_dir(self) -> Path:
        return Path(self.job_dir) / "hosts"


def hyperparameters_json(spec: JobSpec) -> str:
    return json.dumps(dict(spec.hyperparameters), indent=None)


def inputdataconfig_json(spec: JobSpec) -> str:
    """As SageMaker writes it: ContentType only when set; the per-channel mode, distribution, wrapper.

    CompressionType stays out: the platform decompresses Pipe data, the container sees plain bytes."""
    config = {}
    for ch in spec.channels:
        entry: dict[str, str] = {}
        if ch.content_type:
            entry["ContentType"] = ch.content_type
        entry["TrainingInputMode"] = ch.input_mode
        entry["S3DistributionType"] = ch.distribution
        entry["RecordWrapperType"] = ch.record_wrapper
        config[ch.name] = entry
    return json.dumps(config)


def resourceconfig_json(spec: JobSpec, host: str) -> str:
    hosts = list(spec.hosts)
    return json.dumps({
        "current_host": host,
        "current_instance_type": spec.instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": hosts,
        "instance_groups": [{"instance_group_name": "homogeneousCluster",
                             "instance_type": spec.instance_type, "hosts": hosts}],
        "network_interface_name": "eth0",
    })


def host_environment(spec: JobSpec, host: str, ps_port: int | None = None) -> dict[str, str]:
    env = {
        "TRAINING_JOB_NAME": spec.job_name,
        "TRAINING_JOB_ARN": f"arn:aws:sagemaker:local:000000000000:training-job/{spec.job_name}",
        "CURRENT_HOST": host,
        "SAGEMAKER_JOB_NAME": spec.job_name,
        "PYTHONUNBUFFERED": "1",
    }
    if spec.algorithm:
        env["SMLOCAL_ALGORITHM"] = spec.algorithm
    if spec.instance_count > 1 and ps_port:
        # hosts share this machine's network: the parameter server lives on loopback, not at "algo-1"
        env["DMLC_PS_ROOT_URI"] = "127.0.0.1"
        env["DMLC_PS_ROOT_PORT"] = str(ps_port)
        # the first host's liveness monitor (algorithms/distributed.py); jobs.free_port_pair keeps both free
        env["SMLOCAL_KV_MONITOR_PORT"] = str(ps_port + 1)
    env.update(spec.environment)  # the job's own Environment wins
    return env


def _file_mounts(ch: ChannelSpec, objects: tuple[DataObject, ...], whole: bool) -> tuple[Mount, ...]:
    base = f"input/data/{ch.name}"
    if whole:  # the whole directory, as it is
        return (Mount(ch.source, base),)
    return tuple(Mount(obj.path, f"{base}/{obj.key}") for obj in objects)


def plan_training(spec: JobSpec, job_dir: str | Path, channel_objects: Mapping[str, Sequence[DataObject]],
                  ps_port: int | None = None, source_is_dir: Mapping[str, bool] | None = None) -> TrainingPlan:
    """The per-host plan. ``channel_objects``: every channel's files in key order (see ``list_objects``).

    ``source_is_dir`` tells which channel sources are directories: a FullyReplicated directory is
    mounted whole; a single file or a host's shard is mounted file by file.
    """
    job_dir = Path(job_dir)
    source_is_dir = source_is_dir or {}
    hosts = []
    for index, host in enumerate(spec.hosts):
        root = job_dir / "hosts" / host
        mounts: list[Mount] = []
        placed: list[Mount] = []
        pipes: list[PipeFeed] = []
        channel_files: dict[str, tuple[DataObject, ...]] = {}
        dirs = list(HOST_DIRS)
        for ch in spec.channels:
            objects = tuple(channel_objects.get(ch.name, ()))
            sharded = ch.distribution == "ShardedByS3Key"
            if ch.is_pipe:
                feed = PipeFeed(
                    channel=ch.name, fifo_dir=str(root / "input" / "data"), objects=objects,
                    host_index=index, host_count=spec.instance_count, sharded=sharded,
                    compression=ch.compression, record_wrapper=ch.record_wrapper,
                    shuffle_seed=ch.shuffle_seed,
                )
                pipes.append(feed)
                channel_files[ch.name] = feed.objects_for_epoch(0)
            else:
                mine = shard(objects, index, spec.instance_count) if sharded else objects
                channel_files[ch.name] = mine
                whole = not sharded and source_is_dir.get(ch.name, False)
                if ch.is_s3:
                    placed.extend(_file_mounts(ch, mine, whole=False))
                else:
                    mounts.extend(_file_mounts(ch, mine, whole))
                if not whole:
                    dirs.append(f"input/data/{ch.name}")
        if spec.source_dir:  # script mode: the user's code at /opt/ml/code (an archive is unpacked first)
            mounts.append(Mount(spec.source_dir, "code"))
        files = {
            "input/config/hyperparameters.json": hyperparameters_json(spec),
            "input/config/inputdataconfig.json": inputdataconfig_json(spec),
            "input/config/resourceconfig.json": resourceconfig_json(spec, host),
        }
        hosts.append(HostPlan(
            host=host, root=str(root), dirs=tuple(dirs), files=files,
            env=host_environment(spec, host, ps_port), mounts=tuple(mounts),
            channel_files=channel_files, pipes=tuple(pipes), placed=tuple(placed),
        ))
    return TrainingPlan(spec=spec, job_dir=str(job_dir), hosts=tuple(hosts))


def list_objects(spec: JobSpec) -> tuple[dict[str, tuple[DataObject, ...]], dict[str, bool]]:
    """Read the local channels' file lists from disk (the one impure step before planning); S3
    channels are listed by ``sources.resolve_channels``."""
    from smlocal.runtime.jobspec import list_channel_files

    objects, is_dir = {}, {}
    for ch in spec.channels:
        if ch.is_s3:
            continue
        objects[ch.name] = tuple(DataObject(key, path, Path(path).stat().st_size)
                                 for key, path in list_channel_files(ch.source))
        is_dir[ch.name] = Path(ch.source).is_dir()
    return objects, is_dir
