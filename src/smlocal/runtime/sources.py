"""The one reader of channel sources and job outputs: local paths, or S3 when a URI says ``s3://``.

Before any container starts, ``resolve_channels`` lists every channel once: local ones from disk
(checked here: a channel needs data files, ShardedByS3Key one per host), S3 ones through
``s3.objects.list_channel_objects``, whose errors name the bucket/key and the cause (no such bucket,
access denied, no credentials, empty prefix). The plan gets that listing. Then, per input mode:

- File: the S3 objects are downloaded in parallel through the local cache of ``s3.cache`` (a repeated
  run downloads nothing) and planned as ``placed`` files: hard links in each host's channel directory.
- Pipe: each object becomes a ``DataObject`` whose opener streams it from S3; the Pipe feeder writes
  it into the FIFO (gunzipped / RecordIO-wrapped as for local files), never to disk.

Outputs: ``check_output`` checks an ``s3://`` S3OutputPath's bucket up front; ``upload_outputs`` puts
the artifacts at ``<path>/<job>/output/``. ``local_model`` and ``transform_inputs`` /
``staged_output`` do the same for ``serve`` and ``transform``; ``local_object`` fetches a script's
``s3://`` source archive as well. Every S3 call goes through the
command's one ``s3.client.LazyClient``, which makes its boto3 client only when a URI is s3://.
"""
from __future__ import annotations

import functools
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from smlocal.errors import CustomerError
from smlocal.runtime.jobfields import field_error
from smlocal.runtime.jobspec import ChannelSpec, JobSpec
from smlocal.runtime.plan import DataObject, require_shardable, shard_objects
from smlocal.runtime.progress import human_bytes
from smlocal.runtime.s3.objects import (S3Object, check_bucket, head_object, list_channel_objects,
                                        open_object_stream, upload_directory, upload_job_outputs)
from smlocal.runtime.s3.client import LazyClient
from smlocal.runtime.s3.uri import is_s3_uri

OUTPUT_NAMES = ("model.tar.gz", "output.tar.gz")


class DisplayProgress:
    """``s3.cache`` progress events shown on the runtime's ``Display``: one byte count per download
    batch and a closing line saying how much came from S3 and how much from the cache."""

    def __init__(self, display, label: str):
        self.display, self.label = display, label
        self.task = None
        self.cached = self.downloaded = 0

    def __call__(self, event: str, obj, nbytes: int) -> None:
        if event == "plan" and nbytes:
            self.task = self.display.task(f"S3 download: {self.label}", total=nbytes, unit="bytes")
        elif event == "bytes" and self.task is not None:
            self.task.advance(nbytes)
        elif event == "cached":
            self.cached += 1
        elif event == "done":
            self.downloaded += 1
        elif event == "finish":
            self.display.message(f"{self.label}: {self.downloaded + self.cached} S3 object(s), {self.downloaded} "
                                 f"downloaded ({human_bytes(nbytes)}), {self.cached} reused from the cache")


def _progress(display, label: str):
    return DisplayProgress(display, label) if display is not None else None  # None: s3.cache's own


def _streamed(objects: Sequence[S3Object], client) -> tuple[DataObject, ...]:
    """DataObjects that read their S3 object straight from S3 when opened (path = URI, for messages)."""
    return tuple(DataObject(o.name, o.uri, o.size, opener=functools.partial(open_object_stream, o, client))
                 for o in objects)


def _one_per_path(ch: ChannelSpec, objects: Sequence[S3Object]) -> list[S3Object]:
    """File mode writes each object at its relative path: the same object listed twice is one file;
    two objects at one path would hide each other (CustomerError)."""
    owners: dict[str, S3Object] = {}
    for obj in objects:
        owner = owners.setdefault(obj.name, obj)
        if owner.uri != obj.uri:
            raise CustomerError(f"Channel '{ch.name}' ({ch.source}): {owner.uri} and {obj.uri} would both be "
                                f"written to input/data/{ch.name}/{obj.name}; rename one of them or give a "
                                "narrower prefix or manifest.")
    return list(owners.values())


def s3_channel(ch: ChannelSpec, host_count: int, client: LazyClient, display=None,
               cache_dir: str | Path | None = None, host_index: int | None = None) -> tuple[DataObject, ...]:
    """List an S3 channel (validating it) and make its objects usable: downloaded into the cache for
    File mode, streamed for Pipe mode. Listing (key or manifest) order is kept: sharding deals it out.
    ``host_index`` (one node laying out its own tree): only that host's shard is downloaded; the other
    objects stay in the listing, named by their URIs, so the plan deals the same shards."""
    c = client.get()
    listed = list_channel_objects(ch.source, ch.data_type, c, channel=ch.name)
    if ch.is_sharded:  # too few objects for the hosts: say so now, not in a host
        require_shardable(len(listed), host_count, f" '{ch.name}' ({ch.source})")
    if ch.is_pipe:
        return _streamed(listed, c)
    from smlocal.runtime.s3 import cache

    unique = _one_per_path(ch, listed)
    mine = unique if host_index is None else shard_objects(unique, host_index, host_count, ch.distribution)
    files = cache.fetch_to_cache(mine, cache_dir, progress=_progress(display, f"channel '{ch.name}'"), client=c)
    local = {o.uri: str(path) for o, path in zip(mine, files, strict=True)}
    return tuple(DataObject(o.name, local.get(o.uri, o.uri), o.size, origin=o.uri) for o in unique)


def local_files(source: str | Path) -> list[tuple[str, str]]:
    """(key, absolute path) of every data file of a local source, sorted by key like an S3 listing.

    A file source is a single object; a directory source is every file below it. Hidden files and
    directories (``.name``) are skipped, as editors and OSes leave them behind.
    """
    from smlocal.data.channels import data_files  # the container's own rule, so both sides agree

    root = Path(source)
    if root.is_file():
        return [(root.name, str(root))]
    return [(path.relative_to(root).as_posix(), str(path)) for path in data_files(root)]


def local_channel(ch: ChannelSpec, index: int, host_count: int) -> tuple[DataObject, ...]:
    """A local channel's files (``index``: its place in InputDataConfig, for the error's field path),
    checked: at least one data file, and one per host under ShardedByS3Key."""
    objects = tuple(DataObject(key, path, Path(path).stat().st_size) for key, path in local_files(ch.source))
    field = f"InputDataConfig[{index}].DataSource.S3DataSource"
    if not objects:
        raise field_error(f"{field}.S3Uri", f"channel '{ch.name}' has no data files in {ch.source} "
                                            "(hidden files are ignored).")
    if ch.is_sharded:
        require_shardable(len(objects), host_count, f" '{ch.name}'", unit="files",
                          field=f"{field}.S3DataDistributionType")
    return objects


def resolve_channels(spec: JobSpec, client: LazyClient, display=None, cache_dir: str | Path | None = None,
                     host_index: int | None = None) -> tuple[dict[str, tuple[DataObject, ...]], dict[str, bool]]:
    """Every channel's objects in key order, and which sources are local directories: the listing the
    plan is made from. Each channel is listed once, here, and checked before anything runs; S3 File-mode
    channels are downloaded into the cache (only host ``host_index``'s share, when given)."""
    objects: dict[str, tuple[DataObject, ...]] = {}
    is_dir: dict[str, bool] = {}
    for index, ch in enumerate(spec.channels):
        if ch.is_s3:
            objects[ch.name] = s3_channel(ch, spec.instance_count, client, display, cache_dir, host_index)
            is_dir[ch.name] = False
        else:
            objects[ch.name] = local_channel(ch, index, spec.instance_count)
            is_dir[ch.name] = Path(ch.source).is_dir()
    return objects, is_dir


# ------------------------------------------------------------------------------------------- outputs
def check_output(spec: JobSpec, client: LazyClient) -> None:
    """An ``s3://`` S3OutputPath must name a bucket we can reach: checked before any container starts,
    so a typo does not cost a whole training run."""
    if spec.s3_output_path:
        check_bucket(spec.s3_output_path, client.get(), f" (S3OutputPath {spec.s3_output_path})")


def upload_outputs(spec: JobSpec, output_dir: Path, client: LazyClient,
                   names: Sequence[str] = OUTPUT_NAMES) -> Mapping[str, str]:
    """Upload the job's artifacts to ``<S3OutputPath>/<job>/output/`` (nothing for a local output)."""
    if not spec.s3_output_path:
        return {}
    return upload_job_outputs(output_dir, spec.s3_output_path, spec.job_name, client.get(), names=names)


def local_object(location: str, client: LazyClient, display=None, cache_dir: str | Path | None = None,
                 label: str = "model") -> Path:
    """One file a job or endpoint reads: a local path as it is; an ``s3://`` object (a model.tar.gz, a
    script's sourcedir.tar.gz) through the download cache (fetched once, reused while its ETag is
    unchanged). ``label`` names it in the progress line."""
    if not is_s3_uri(location):
        return Path(location)
    from smlocal.runtime.s3 import cache

    c = client.get()
    obj = head_object(location, c)
    (path,) = cache.fetch_to_cache([obj], cache_dir, progress=_progress(display, label), client=c)
    return path


def local_model(model: str, client: LazyClient, display=None, cache_dir: str | Path | None = None) -> Path:
    """``serve``/``transform --model``: a local path as it is; an ``s3://.../model.tar.gz`` through the
    download cache."""
    return local_object(model, client, display, cache_dir, label="model")


def transform_inputs(input_location: str, client: LazyClient) -> list[DataObject]:
    """The transform's input files in key order: local files, or the objects under an ``s3://`` prefix,
    which are streamed from S3 when read. Listed before the endpoint starts, so bad input fails fast."""
    if is_s3_uri(input_location):
        c = client.get()
        return list(_streamed(list_channel_objects(input_location, "S3Prefix", c, channel=None), c))
    from smlocal.runtime.transform import input_files

    return [DataObject(key, str(path), path.stat().st_size) for key, path in input_files(Path(input_location))]


@contextmanager
def staged_output(target: str, client: LazyClient) -> Iterator[Path]:
    """A local directory for outputs bound for ``target``: ``target`` itself when local; for an
    ``s3://`` URI a temporary directory whose files are uploaded below the URI (at their relative
    paths) when the block succeeds, then removed. The bucket is checked before the block runs."""
    if not is_s3_uri(target):
        yield Path(target)
        return
    check_bucket(target, client.get(), f" (the output {target})")
    staging = Path(tempfile.mkdtemp(prefix="smlocal-output-"))
    try:
        yield staging
        upload_directory(staging, target, client.get())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
