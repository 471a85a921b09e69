"""The training plan: a JobSpec and its channels' listing -> what each host gets. Pure: no disk or S3 access.

The listing (every channel's objects in key order) comes from ``sources``, the one reader of local
and S3 channels. A backend executes the plan: it creates ``dirs``, writes ``files``, realises
``mounts`` (bind mounts in Docker, symlinks for local processes), hard-links ``placed`` files (S3
downloads) into the tree, writes ``gunzipped`` copies (File mode with CompressionType=Gzip), starts the
Pipe feeders and runs the container with ``env``. Every path in
the tree is the container's own ``environment.Paths``, rooted at the host's directory or at /opt/ml.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Mapping, Sequence, TypeVar

from smlocal.environment import DEFAULT_BASE_DIR, Paths, pipe_name
from smlocal.errors import CustomerError
from smlocal.runtime.jobfields import field_error
from smlocal.runtime.jobspec import ChannelSpec, JobSpec
from smlocal.runtime.records import RECORD_NAME

# pure POSIX paths: the container's tree is Linux's whatever this machine is, and nothing here is on disk
CONTAINER = Paths(PurePosixPath(DEFAULT_BASE_DIR))  # the tree as the container sees it
LAYOUT = Paths(PurePosixPath())  # the same tree relative to its root: mount targets, file names
T = TypeVar("T")


@dataclass(frozen=True)
class DataObject:
    """One file of a channel: ``key`` is its path below the channel root (like an S3 key suffix).

    ``opener`` lets a remote object (S3) be streamed by the Pipe feeder without a local copy;
    ``path`` then names it (its URI) in messages. ``origin``: what messages call a local copy (the S3
    URI of a file in the download cache); empty when ``path`` is the user's own.
    """

    key: str
    path: str
    size: int = 0
    opener: Callable[[], BinaryIO] | None = field(default=None, compare=False, repr=False)
    origin: str = ""

    def open(self) -> BinaryIO:
        return self.opener() if self.opener is not None else open(self.path, "rb")


@dataclass(frozen=True)
class Mount:
    source: str  # absolute path on this machine
    target: str  # path below /opt/ml, POSIX, e.g. "input/data/train/part-0.csv"
    read_only: bool = True
    origin: str = ""  # what messages call ``source`` when it is a local copy (an S3 URI); empty: source

    @property
    def shown_as(self) -> str:
        return self.origin or self.source

    @property
    def container_path(self) -> str:
        return str(CONTAINER.base / self.target)


# ----------------------------------------------------------------------------------------- sharding
def require_shardable(count: int, host_count: int, channel: str = "", unit: str = "objects",
                      field: str | None = None) -> None:
    """The one rule of ShardedByS3Key: objects are dealt out whole, so there must be at least one per
    host; fewer is a CustomerError, as on SageMaker. ``channel`` (e.g. ``" 'train' (s3://b/train/)"``)
    names the channel in the message; ``field`` makes it an error of that request field."""
    if host_count <= count:
        return
    message = (f"ShardedByS3Key over {host_count} hosts needs at least {host_count} {unit}; channel{channel} "
               f"has {count}. Split the data into more {unit} or use FullyReplicated.")
    raise field_error(field, message) if field else CustomerError(message)


def shard_objects(objects: Sequence[T], host_index: int, host_count: int,
                  distribution: str = "FullyReplicated", *, source: str | None = None) -> list[T]:
    """The objects host ``host_index`` (0-based) of ``host_count`` gets, for any sequence of objects.

    FullyReplicated: all of them. ShardedByS3Key: dealt round-robin in the given (key) order, so every
    host gets about 1/n of the objects, deterministically, and shard i of an SDK record_set() goes to
    host i. One rule for local and S3 channels."""
    items = list(objects)
    if host_count < 1 or not 0 <= host_index < host_count:
        raise ValueError(f"host_index {host_index} is not in range for {host_count} host(s)")
    kind = str(distribution).lower()
    if kind == "fullyreplicated":
        return items
    if kind != "shardedbys3key":
        raise CustomerError(f"S3DataDistributionType {distribution!r} is not one of: FullyReplicated, "
                            "ShardedByS3Key.")
    require_shardable(len(items), host_count, f" {source}" if source else "")
    return items[host_index::host_count]


def shard(objects: Sequence[DataObject], host_index: int, host_count: int) -> tuple[DataObject, ...]:
    """ShardedByS3Key: objects in key order, dealt round-robin, so each host gets about 1/n of them."""
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
        return Path(self.fifo_dir) / pipe_name(self.channel, epoch)


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
    # File-mode files of a CompressionType=Gzip channel: the executor writes each source, gunzipped, at
    # its target (a real file in the tree, for either backend), so the container reads plain data
    gunzipped: tuple[Mount, ...] = ()

    @property
    def paths(self) -> Paths:
        """This host's /opt/ml tree on this machine, as the container's ``Paths``."""
        return Paths(Path(self.root))

    def user_sources(self) -> dict[str, str]:
        """Each mount's (and placed or gunzipped copy's) path in this host's tree, on this machine and
        as the container sees it -> the path the user gave (data file or directory, script code, S3 URI),
        so messages can name the user's file."""
        names = {}
        for mount in self.mounts + self.placed + self.gunzipped:
            names[str(Path(self.root) / mount.target)] = mount.shown_as
            names[mount.container_path] = mount.shown_as
        return names


_PATH_END = r"(?![^/\s'\":,;)\]])"  # a prefix matches whole path components only


def name_user_sources(text: str, sources: Mapping[str, str]) -> str:
    """``text`` with every path below a mount target (``sources``: target -> user path, as
    ``HostPlan.user_sources``) rewritten to the same path below the user's source; longest first, so
    a file mount wins over its channel directory."""
    if not sources:
        return text
    targets = sorted(sources, key=len, reverse=True)
    pattern = re.compile("(?:" + "|".join(re.escape(t) for t in targets) + ")" + _PATH_END)
    return pattern.sub(lambda m: sources[m.group(0)], text)


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
        return Path(self.job_dir) / RECORD_NAME

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

    CompressionType stays out: the platform decompresses the data (Pipe and File mode), the container
    sees plain bytes."""
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
        # the first host's liveness monitor (algorithms/cluster/monitor.py); ports.free_port_pair keeps both free
        env["SMLOCAL_KV_MONITOR_PORT"] = str(ps_port + 1)
    env.update(spec.environment)  # the job's own Environment wins
    return env


def _file_mounts(ch: ChannelSpec, objects: tuple[DataObject, ...], whole: bool) -> tuple[Mount, ...]:
    base = LAYOUT.channel_dir(ch.name)
    if whole:  # the whole directory, as it is
        return (Mount(ch.source, str(base)),)
    return tuple(Mount(obj.path, str(base / obj.key), origin=obj.origin) for obj in objects)


def _gunzipped(ch: ChannelSpec, objects: tuple[DataObject, ...]) -> tuple[Mount, ...]:
    """Where each gzip file of a File-mode channel is written decompressed: its key without ``.gz``,
    unless another file of the channel already has that name."""
    base = LAYOUT.channel_dir(ch.name)
    keys = {obj.key for obj in objects}
    plain = {obj.key: obj.key[:-3] if obj.key.endswith(".gz") and obj.key[:-3] not in keys else obj.key
             for obj in objects}
    return tuple(Mount(obj.path, str(base / plain[obj.key]), origin=obj.origin) for obj in objects)


@dataclass
class _HostChannels:
    """What one host's channels add to its plan (collected channel by channel)."""

    dirs: list[str]
    mounts: list[Mount] = field(default_factory=list)
    placed: list[Mount] = field(default_factory=list)
    gunzipped: list[Mount] = field(default_factory=list)
    pipes: list[PipeFeed] = field(default_factory=list)
    channel_files: dict[str, tuple[DataObject, ...]] = field(default_factory=dict)


def _host_channels(spec: JobSpec, index: int, root: Paths, channel_objects: Mapping[str, Sequence[DataObject]],
                   source_is_dir: Mapping[str, bool]) -> _HostChannels:
    out = _HostChannels(dirs=[str(d) for d in LAYOUT.created_dirs])
    for ch in spec.channels:
        objects = tuple(channel_objects.get(ch.name, ()))
        if ch.is_pipe:
            feed = PipeFeed(
                channel=ch.name, fifo_dir=str(root.data_dir), objects=objects,
                host_index=index, host_count=spec.instance_count, sharded=ch.is_sharded,
                compression=ch.compression, record_wrapper=ch.record_wrapper,
                shuffle_seed=ch.shuffle_seed,
            )
            out.pipes.append(feed)
            out.channel_files[ch.name] = feed.objects_for_epoch(0)
            continue
        mine = shard(objects, index, spec.instance_count) if ch.is_sharded else objects
        out.channel_files[ch.name] = mine
        whole = not ch.is_sharded and source_is_dir.get(ch.name, False) and ch.compression == "None"
        if ch.compression == "Gzip":
            out.gunzipped.extend(_gunzipped(ch, mine))
        elif ch.is_s3:
            out.placed.extend(_file_mounts(ch, mine, whole=False))
        else:
            out.mounts.extend(_file_mounts(ch, mine, whole))
        if not whole:
            out.dirs.append(str(LAYOUT.channel_dir(ch.name)))
    if spec.source_dir:  # script mode: the user's code at /opt/ml/code (an archive is unpacked first)
        out.mounts.append(Mount(spec.source_dir, str(LAYOUT.code_dir)))
    return out


def plan_training(spec: JobSpec, job_dir: str | Path, channel_objects: Mapping[str, Sequence[DataObject]],
                  ps_port: int | None = None, source_is_dir: Mapping[str, bool] | None = None) -> TrainingPlan:
    """The per-host plan. ``channel_objects``: every channel's objects in key order, as
    ``sources.resolve_channels`` lists them; nothing is read here.

    ``source_is_dir`` tells which channel sources are directories: a FullyReplicated directory is
    mounted whole; a single file or a host's shard is mounted file by file.
    """
    job_dir = Path(job_dir)
    hosts = []
    for index, host in enumerate(spec.hosts):
        root = job_dir / "hosts" / host
        channels = _host_channels(spec, index, Paths(root), channel_objects, source_is_dir or {})
        files = {
            str(LAYOUT.hyperparameters_file): hyperparameters_json(spec),
            str(LAYOUT.input_data_config_file): inputdataconfig_json(spec),
            str(LAYOUT.resource_config_file): resourceconfig_json(spec, host),
        }
        hosts.append(HostPlan(
            host=host, root=str(root), dirs=tuple(channels.dirs), files=files,
            env=host_environment(spec, host, ps_port), mounts=tuple(channels.mounts),
            channel_files=channels.channel_files, pipes=tuple(channels.pipes), placed=tuple(channels.placed),
            gunzipped=tuple(channels.gunzipped),
        ))
    return TrainingPlan(spec=spec, job_dir=str(job_dir), hosts=tuple(hosts))
