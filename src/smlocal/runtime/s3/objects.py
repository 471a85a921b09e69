"""S3 objects of channels and outputs: list (prefix or manifest), check, stream, head and upload them.

Listing a channel validates it completely (no such bucket, access denied, no credentials, an empty
prefix, a bad manifest), so these errors surface before any container starts. boto3 is used only
through the client given (``s3.client``); the File-mode download cache is ``s3.cache``.
"""
from __future__ import annotations

import io
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Sequence

from smlocal.errors import CustomerError, PlatformError, SmlocalError
from smlocal.runtime.s3.client import client_or_default
from smlocal.runtime.s3.errors import is_missing_key, s3_errors, translate_error
from smlocal.runtime.s3.uri import (DATA_TYPES, MANIFEST_NAME, is_s3_uri, join_s3, parse_s3_uri, prefix_relpath,
                                    s3_uri, safe_relpath)

log = logging.getLogger(__name__)

CHUNK = 1 << 20


# ------------------------------------------------------------------------------------------ listing
@dataclass(frozen=True)
class S3Object:
    """One object of a channel. ``relpath``: where File mode puts it below the channel directory."""

    bucket: str
    key: str
    size: int
    etag: str  # without the quotes S3 puts around it
    relpath: str = ""

    @property
    def uri(self) -> str:
        return s3_uri(self.bucket, self.key)

    @property
    def name(self) -> str:
        return self.relpath or PurePosixPath(self.key).name


def _etag(value: str | None) -> str:
    return (value or "").strip().strip('"')


def _label(uri: str, channel: str | None) -> str:
    return f"channel '{channel}' ({uri})" if channel else uri


def _for_channel(channel: str | None) -> str:
    return f" (channel '{channel}')" if channel else ""


def list_channel_objects(uri: str, data_type: str = "S3Prefix", client=None, *, channel: str | None = None,
                         max_workers: int = 16) -> list[S3Object]:
    """Every object of an S3 channel, with size and ETag, validated so jobs fail before containers start.

    - ``S3Prefix``: every object whose key starts with the URI's key (as SageMaker: a key-name prefix,
      not a directory), except zero-byte ``.../`` folder markers, in key order.
    - ``ManifestFile``: the URI of a JSON manifest ``[{"prefix": "s3://bucket/prefix/"}, "rel/key", ...]``
      (each object is prefix + entry), in manifest order. A URI ending in ``/``, or naming a "folder"
      that holds one, reads ``<uri>/.amazon.manifest`` as the SDK's ``record_set()`` writes it. Every entry
      is checked to exist (HeadObject, in parallel).

    Raises ``CustomerError`` naming bucket/key for: no such bucket, access denied, no credentials,
    an empty prefix, a missing manifest, a malformed manifest, missing manifest entries."""
    kind = next((t for t in DATA_TYPES if t.lower() == str(data_type).lower()), None)
    if kind is None:
        raise CustomerError(f"{_label(uri, channel)}: S3DataType {data_type!r} is not supported; "
                            f"use one of: {', '.join(DATA_TYPES)}.")
    client = client_or_default(client)
    if kind == "S3Prefix":
        return _list_prefix(client, uri, channel)
    return _list_manifest(client, uri, channel, max_workers)


def _list_prefix(client, uri: str, channel: str | None) -> list[S3Object]:
    bucket, prefix = parse_s3_uri(uri)
    found: list[S3Object] = []
    with s3_errors(uri, "list", _for_channel(channel)):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                key = item["Key"]
                if key.endswith("/"):  # a console "folder" marker, not data (the SDK skips it too)
                    continue
                rel = safe_relpath(prefix_relpath(prefix, key), s3_uri(bucket, key))
                found.append(S3Object(bucket, key, int(item["Size"]), _etag(item.get("ETag")), rel))
    if not found:
        raise CustomerError(f"{_label(uri, channel)}: no objects found under the prefix '{prefix}' in bucket "
                            f"'{bucket}'. Check the URI (S3 keys are case-sensitive) and that the data was "
                            "uploaded.")
    return sorted(found, key=lambda o: o.key)  # str order = UTF-8 byte order = S3 listing order


def parse_manifest(data: bytes | str, manifest_uri: str) -> tuple[str, list[str]]:
    """Parse an S3 ManifestFile: returns (prefix URI, entries). Pure; CustomerError says what is wrong."""
    expected = 'Expected [{"prefix": "s3://bucket/prefix/"}, "relative/key1", "relative/key2", ...].'
    try:
        doc = json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CustomerError(f"Manifest {manifest_uri} is not valid JSON ({exc}). {expected}") from None
    if not isinstance(doc, list) or not doc or not isinstance(doc[0], dict) \
            or not is_s3_uri(doc[0].get("prefix")):
        raise CustomerError(f"Manifest {manifest_uri} must be a JSON list starting with "
                            f'{{"prefix": "s3://..."}}. {expected}')
    prefix = doc[0]["prefix"]
    parse_s3_uri(prefix)
    entries = doc[1:]
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, str) or not entry:
            raise CustomerError(f"Manifest {manifest_uri}: element {index} is {entry!r}; every element after "
                                f"the prefix must be a non-empty key relative to it. {expected}")
    if not entries:
        raise CustomerError(f"Manifest {manifest_uri} lists no objects after its prefix {prefix}. {expected}")
    return prefix, entries


def _read_manifest(client, uri: str, channel: str | None) -> tuple[str, bytes]:
    bucket, key = parse_s3_uri(uri)
    if not key or key.endswith("/"):
        candidates = [key + MANIFEST_NAME]
    else:
        candidates = [key, f"{key}/{MANIFEST_NAME}"]
    for candidate in candidates:
        candidate_uri = s3_uri(bucket, candidate)
        with s3_errors(candidate_uri, "read the manifest", _for_channel(channel)):
            try:
                body = client.get_object(Bucket=bucket, Key=candidate)["Body"]
            except Exception as exc:
                if is_missing_key(exc):
                    continue  # try the next candidate; say which were tried below
                raise
            with body:
                return candidate_uri, body.read()
    tried = " or ".join(s3_uri(bucket, c) for c in candidates)
    raise CustomerError(f"{_label(uri, channel)}: the manifest {tried} does not exist (NoSuchKey). A ManifestFile "
                        "channel needs the S3 URI of a manifest (the SDK's record_set() writes "
                        f"<prefix>/{MANIFEST_NAME}); for a folder of data files use S3DataType=S3Prefix.")


def _list_manifest(client, uri: str, channel: str | None, max_workers: int) -> list[S3Object]:
    manifest_uri, data = _read_manifest(client, uri, channel)
    prefix_uri, entries = parse_manifest(data, manifest_uri)
    bucket, prefix = parse_s3_uri(prefix_uri)
    unique = list(dict.fromkeys(entries))

    def head(entry: str) -> dict | None:
        key = prefix + entry
        with s3_errors(s3_uri(bucket, key), "read", f" (listed in {manifest_uri})"):
            try:
                return client.head_object(Bucket=bucket, Key=key)
            except Exception as exc:
                if is_missing_key(exc):
                    return None
                raise

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(unique)))) as pool:
        heads = dict(zip(unique, pool.map(head, unique), strict=True))
    missing = [entry for entry in unique if heads[entry] is None]
    if missing:
        check_bucket(prefix_uri, client)  # every entry "missing" may really be a missing bucket
        shown = ", ".join(s3_uri(bucket, prefix + e) for e in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise CustomerError(f"{_label(uri, channel)}: the manifest {manifest_uri} lists {len(missing)} object(s) "
                            f"that do not exist: {shown}{more}. Fix the manifest or upload the objects.")
    return [S3Object(bucket, prefix + entry, int(heads[entry]["ContentLength"]), _etag(heads[entry].get("ETag")),
                     safe_relpath(entry, f"{manifest_uri} entry {entry!r}"))
            for entry in entries]


def check_bucket(uri: str, client=None, context: str = "") -> None:
    """HeadBucket on the URI's bucket: CustomerError if it does not exist or is not accessible.

    Use it as the pre-flight check of an ``S3OutputPath`` before any container starts; ``context``
    (e.g. ``" (S3OutputPath s3://b/out)"``) goes after the bucket's URI in the message."""
    bucket, _ = parse_s3_uri(uri)
    with s3_errors(s3_uri(bucket), "access", context):
        client_or_default(client).head_bucket(Bucket=bucket)


# ---------------------------------------------------------------------------------------- streaming
class S3ObjectReader(io.RawIOBase):
    """A raw binary stream over one object's GetObject body: never written to disk.

    The first request carries ``If-Match: <etag>`` when the ETag is known, so the bytes are those the
    listing saw. A connection that drops mid-object is resumed with a ``Range`` request from the
    current offset (same ETag), up to ``retries`` times."""

    def __init__(self, client, bucket: str, key: str, etag: str | None = None, size: int | None = None,
                 retries: int = 3):
        super().__init__()
        self._client, self._bucket, self._key = client, bucket, key
        self._etag, self._size, self._retries = etag or None, size, retries
        self._pos = 0
        self._body = None
        from botocore import exceptions as bce

        self._transient = (bce.BotoCoreError, OSError)  # dropped connections, timeouts, short reads
        self._corrupt = getattr(bce, "FlexibleChecksumError", ())  # bytes already handed out: no resume
        self._open()

    @property
    def uri(self) -> str:
        return s3_uri(self._bucket, self._key)

    def _open(self) -> None:
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": self._key}
        if self._etag:
            params["IfMatch"] = f'"{self._etag}"'
        if self._pos:
            params["Range"] = f"bytes={self._pos}-"
        with s3_errors(self.uri, "read"):
            response = self._client.get_object(**params)
        if self._etag is None:
            self._etag = _etag(response.get("ETag")) or None
        if self._size is None:
            self._size = self._pos + int(response["ContentLength"])
        self._body = response["Body"]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed S3 object stream")
        view = memoryview(buffer).cast("B")
        if not len(view) or self._body is None:
            return 0
        failures = 0
        while True:
            try:
                data = self._body.read(len(view))
                if data:
                    break
                if self._pos >= self._size:  # EOF: botocore has checked the length (and checksum, if any)
                    self._body.close()
                    self._body = None
                    return 0
                raise OSError(f"connection closed at byte {self._pos} of {self._size}")
            except self._corrupt as exc:
                raise PlatformError(f"Cannot read {self.uri}: the data failed its checksum ({exc}). "
                                    "Retry the job.") from exc
            except self._transient as exc:
                failures += 1
                if failures > self._retries:
                    raise PlatformError(f"Cannot read {self.uri}: the download failed at byte {self._pos} of "
                                        f"{self._size} after {self._retries} retries ({exc}).") from exc
                log.warning("Reading %s failed at byte %d (%s); resuming", self.uri, self._pos, exc)
                self._body.close()
                self._open()
        n = len(data)
        view[:n] = data
        self._pos += n
        return n

    def close(self) -> None:
        if self._body is not None:
            self._body.close()  # releases the connection even when the consumer stops early
            self._body = None
        super().close()


def open_object_stream(obj: S3Object | str, client=None, *, buffer_size: int = CHUNK) -> BinaryIO:
    """A buffered binary file object streaming ``obj`` (an ``S3Object`` or an ``s3://bucket/key`` URI)
    straight from S3, so a Pipe feeder can treat S3 objects like local files. Close it when done."""
    if isinstance(obj, S3Object):
        raw = S3ObjectReader(client_or_default(client), obj.bucket, obj.key, obj.etag, obj.size)
    else:
        bucket, key = parse_s3_uri(obj)
        raw = S3ObjectReader(client_or_default(client), bucket, key)
    return io.BufferedReader(raw, buffer_size=buffer_size)


# ------------------------------------------------------------------------------------ up/downloads
def _transfer_manager(client):
    from boto3.s3.transfer import TransferConfig, create_transfer_manager

    return create_transfer_manager(client, TransferConfig(max_concurrency=8, use_threads=True))


def head_object(uri: str, client=None) -> S3Object:
    """The ``S3Object`` (size, ETag) of one object named by ``uri``, e.g. a model.tar.gz to serve, so
    it can go through the download cache. CustomerError names a missing bucket or key."""
    bucket, key = parse_s3_uri(uri)
    if not key or key.endswith("/"):
        raise CustomerError(f"{uri} names a prefix, not an object; give the S3 URI of a single object.")
    client = client_or_default(client)
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except SmlocalError:
        raise
    except Exception as exc:
        if is_missing_key(exc):  # HeadObject answers a bare 404 for a missing bucket too: ask HeadBucket
            check_bucket(uri, client)
        raise (translate_error(exc, uri, "read") or PlatformError(f"Cannot read {uri}: {exc}")) from exc
    return S3Object(bucket, key, int(head["ContentLength"]), _etag(head.get("ETag")), PurePosixPath(key).name)


def _upload_many(client, pairs: Sequence[tuple[Path, str]]) -> None:
    if not pairs:
        return
    with _transfer_manager(client) as manager:
        futures = [(uri, manager.upload(str(path), *parse_s3_uri(uri))) for path, uri in pairs]
        for uri, future in futures:
            with s3_errors(uri, "upload to"):
                future.result()


def upload_job_outputs(output_dir_local: str | os.PathLike, s3_output_path: str, job_name: str,
                       client=None, names: Sequence[str] = ("model.tar.gz", "output.tar.gz")) -> dict[str, str]:
    """Upload ``names`` (those present; default ``model.tar.gz`` and ``output.tar.gz``) from a job's
    local output directory to ``<s3_output_path>/<job_name>/output/``, as SageMaker lays out
    ``S3OutputPath``. Returns {file name: S3 URI}."""
    base = join_s3(s3_output_path, job_name, "output")
    pairs = [(Path(output_dir_local) / name, join_s3(base, name)) for name in names]
    pairs = [(path, uri) for path, uri in pairs if path.is_file()]
    _upload_many(client_or_default(client), pairs)
    for path, uri in pairs:
        log.info("Uploaded %s to %s", path.name, uri)
    return {path.name: uri for path, uri in pairs}


def upload_directory(local_dir: str | os.PathLike, uri: str, client=None) -> list[str]:
    """Upload every file below ``local_dir`` to ``uri`` + its relative path (transform outputs).
    Returns the URIs written, sorted."""
    root = Path(local_dir)
    if not root.is_dir():
        raise CustomerError(f"Cannot upload {root}: it is not a directory.")
    pairs = [(path, join_s3(uri, path.relative_to(root).as_posix()))
             for path in sorted(root.rglob("*")) if path.is_file()]
    _upload_many(client_or_default(client), pairs)
    return [u for _, u in pairs]