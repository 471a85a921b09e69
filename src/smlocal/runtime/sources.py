"""Channel sources and job outputs wherever they live: local paths, or S3 when a URI says ``s3://``.

Before any container starts, ``resolve_channels`` lists every channel: local ones from disk, S3 ones
through ``s3.list_channel_objects``, whose errors name the bucket/key and the cause (no such bucket,
access denied, no credentials, empty prefix). Then, per input mode:

- File: the S3 objects are downloaded in parallel through the local cache of ``s3_cache`` (a repeated
  run downloads nothing) and planned as ``placed`` files: hard links in each host's channel directory.
- Pipe: each object becomes a ``DataObject`` whose opener streams it from S3; the Pipe feeder writes
  it into the FIFO (gunzipped / RecordIO-wrapped as for local files), never to disk.

Outputs: ``check_output`` checks an ``s3://`` S3OutputPath's bucket up front; ``upload_outputs`` puts
the artifacts at ``<path>/<job>/output/``. ``local_model`` and ``transform_inputs`` /
``staged_output`` do the same for ``serve`` and ``transform``. Every S3 call goes through the
command's one ``s3.LazyClient``, which makes its boto3 client only when a URI is s3://.
"""
from __future__ import annotations

import functools
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from smlocal.errors import CustomerError
from smlocal.runtime import s3
from smlocal.runtime.jobspec import ChannelSpec, JobSpec
from smlocal.runtime.plan import DataObject, list_objects
from smlocal.runtime.progress import human_bytes

OUTPUT_NAMES = ("model.tar.gz", "output.tar.gz")


class DisplayProgress:
    """``s3_cache`` progress events shown on the runtime's ``Display``: one byte count per download
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
    return DisplayProgress(display, label) if display is not None else None  # None: s3_cache's own


def _streamed(objects: Sequence[s3.S3Object], client) -> tuple[DataObject, ...]:
    """DataObjects that read their S3 object straight from S3 when opened (path = URI, for messages)."""
    return tuple(DataObject(o.name, o.uri, o.size, opener=functools.partial(s3.open_object_stream, o, client))
                 for o in objects)


def _one_per_path(ch: ChannelSpec, objects: Sequence[s3.S3Object]) -> list[s3.S3Object]:
    """File mode writes each object at its relative path: the same object listed twice is one file;
    two objects at one path would hide each other (CustomerError)."""
    owners: dict[str, s3.S3Object] = {}
    for obj in objects:
        owner = owners.setdefault(obj.name, obj)
        if owner.uri != obj.uri:
            raise CustomerError(f"Channel '{ch.name}' ({ch.source}): {owner.uri} and {obj.uri} would both be "
                                f"written to input/data/{ch.name}/{obj.name}; rename one of them or give a "
                                "narrower prefix or manifest.")
    return list(owners.values())


def s3_channel(ch: ChannelSpec, host_count: int, client: s3.LazyClient, display=None,
               cache_dir: str | Path | None = None) -> tuple[DataObject, ...]:
    """List an S3 channel (validating it) and make its objects usable: downloaded into the cache for
    File mode, streamed for Pipe mode. Listing (key or manifest) order is kept: sharding deals it out."""
    c = client.get()
    listed = s3.list_channel_objects(ch.source, ch.data_type, c, channel=ch.name)
    if ch.distribution == "ShardedByS3Key":  # too few objects for the hosts: say so now, not in a host
        s3.shard_objects(listed, 0, host_count, ch.distribution, source=f"'{ch.name}' ({ch.source})")
    if ch.is_pipe:
        return _streamed(listed, c)
    from smlocal.runtime import s3_cache

    unique = _one_per_path(ch, listed)
    files = s3_cache.fetch_to_cache(unique, cache_dir, progress=_progress(display, f"channel '{ch.name}'"),
                                    client=c)
    return tuple(DataObject(o.name, str(path), o.size) for o, path in zip(unique, files, strict=True))


def resolve_channels(spec: JobSpec, client: s3.LazyClient, display=None, cache_dir: str | Path | None = None
                     ) -> tuple[dict[str, tuple[DataObject, ...]], dict[str, bool]]:
    """Every channel's objects in key order, and which local sources are directories (for ``plan``).
    S3 channels are listed, checked and (File mode) downloaded here, before anything runs."""
    objects, is_dir = list_objects(spec)
    for ch in spec.channels:
        if ch.is_s3:
            objects[ch.name] = s3_channel(ch, spec.instance_count, client, display, cache_dir)
            is_dir[ch.name] = False
    return objects, is_dir


# ------------------------------------------------------------------------------------------- outputs
def check_output(spec: JobSpec, client: s3.LazyClient) -> None:
    """An ``s3://`` S3OutputPath must name a bucket we can reach: checked before any container starts,
    so a typo does not cost a whole training run."""
    if spec.s3_output_path:
        s3.check_bucket(spec.s3_output_path, client.get(), f" (S3OutputPath {spec.s3_output_path})")


def upload_outputs(spec: JobSpec, output_dir: Path, client: s3.LazyClient,
                   names: Sequence[str] = OUTPUT_NAMES) -> Mapping[str, str]:
    """Upload the job's artifacts to ``<S3OutputPath>/<job>/output/`` (nothing for a local output)."""
    if not spec.s3_output_path:
        return {}
    return s3.upload_job_outputs(output_dir, spec.s3_output_path, spec.job_name, client.get(), names=names)


def local_model(model: str, client: s3.LazyClient, display=None, cache_dir: str | Path | None = None) -> Path:
    """``serve``/``transform --model``: a local path as it is; an ``s3://.../model.tar.gz`` through the
    download cache (fetched once, reused while its ETag is unchanged)."""
    if not s3.is_s3_uri(model):
        return Path(model)
    from smlocal.runtime import s3_cache

    c = client.get()
    obj = s3.head_object(model, c)
    (path,) = s3_cache.fetch_to_cache([obj], cache_dir, progress=_progress(display, "model"), client=c)
    return path


def transform_inputs(input_location: str, client: s3.LazyClient) -> list[DataObject]:
    """The transform's input files in key order: local files, or the objects under an ``s3://`` prefix,
    which are streamed from S3 when read. Listed before the endpoint starts, so bad input fails fast."""
    if s3.is_s3_uri(input_location):
        c = client.get()
        return list(_streamed(s3.list_channel_objects(input_location, "S3Prefix", c, channel=None), c))
    from smlocal.runtime.transform import input_files

    return [DataObject(key, str(path), path.stat().st_size) for key, path in input_files(Path(input_location))]


@contextmanager
def staged_output(target: str, client: s3.LazyClient) -> Iterator[Path]:
    """A local directory for outputs bound for ``target``: ``target`` itself when local; for an
    ``s3://`` URI a temporary directory whose files are uploaded below the URI (at their relative
    paths) when the block succeeds, then removed. The bucket is checked before the block runs."""
    if not s3.is_s3_uri(target):
        yield Path(target)
        return
    s3.check_bucket(target, client.get(), f" (the output {target})")
    staging = Path(tempfile.mkdtemp(prefix="smlocal-output-"))
    try:
        yield staging
        s3.upload_directory(staging, target, client.get())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
