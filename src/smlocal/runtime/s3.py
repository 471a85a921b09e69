"""S3 channels and outputs: list, shard, stream, download and upload objects through boto3.

Everything here is used only when a job names an ``s3://`` URI: boto3 is imported lazily, and local
jobs never touch it. The client follows the standard AWS chain (environment, profile, SSO, instance
role), region included; the endpoint comes from an explicit ``endpoint_url`` (``--s3-endpoint-url``) or
``AWS_ENDPOINT_URL_S3``, which botocore reads itself.

Every S3 failure is turned into a ``CustomerError`` (or a ``PlatformError`` for S3's own 5xx) whose
message names the bucket/key, the cause and what to do; listing a channel validates it completely, so
these errors surface before any container starts. The File-mode download cache is in ``s3_cache``.
"""
from __future__ import annotations

import io
import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Iterator, Sequence, TypeVar

from smlocal.errors import CustomerError, PlatformError, SmlocalError

log = logging.getLogger(__name__)

MANIFEST_NAME = ".amazon.manifest"  # what the SDK's record_set() / upload_numpy_to_s3_shards writes
DATA_TYPES = ("S3Prefix", "ManifestFile")
CHUNK = 1 << 20
T = TypeVar("T")

# the IAM permission an operation needs, for "access denied" hints
_PERMISSION = {
    "ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket", "HeadBucket": "s3:ListBucket",
    "GetObject": "s3:GetObject", "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject", "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
}
_CREDENTIALS_REJECTED = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
                         "TokenRefreshRequired", "ExpiredTokenException", "InvalidClientTokenId"}
_ACCESS_DENIED = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "AccountProblem"}
_WRONG_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "301", "IllegalLocationConstraintException"}
_RETRY_LATER = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "503", "500"}
_ENDPOINT_HINT = "for a custom S3 endpoint, AWS_ENDPOINT_URL_S3 or --s3-endpoint-url"


# ------------------------------------------------------------------------------------------- URIs
def is_s3_uri(value: object) -> bool:
    """True for strings starting with ``s3://`` (any case of the scheme)."""
    return isinstance(value, str) and value[:5].lower() == "s3://"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``; the key may be empty.

    Raises ``CustomerError`` for a non-S3 URI or a missing bucket name."""
    if not is_s3_uri(uri):
        raise CustomerError(f"{uri!r} is not an S3 URI; expected s3://bucket/key.")
    bucket, _, key = uri[5:].partition("/")
    if not bucket or any(c.isspace() for c in bucket):
        raise CustomerError(f"S3 URI {uri!r} has no valid bucket name; expected s3://bucket/key.")
    return bucket, key


def s3_uri(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"


def join_s3(uri: str, *parts: str) -> str:
    """Join key parts onto an S3 URI with single slashes: ``join_s3("s3://b/out/", "job", "output")``."""
    bucket, key = parse_s3_uri(uri)
    pieces = [p.strip("/") for p in (key, *parts) if p.strip("/")]
    return s3_uri(bucket, "/".join(pieces))


# ------------------------------------------------------------------------------------------ client
def make_client(endpoint_url: str | None = None, *, region: str | None = None, max_pool_connections: int = 32):
    """A boto3 S3 client on the standard credential chain.

    ``endpoint_url`` wins over ``AWS_ENDPOINT_URL_S3`` (which botocore applies when it is None). The
    connection pool is sized for the parallel downloads in ``s3_cache``. Clients are thread-safe."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:  # pragma: no cover - boto3 is a dependency; a trimmed install may lack it
        raise CustomerError("s3:// URIs need boto3: pip install boto3 (or give a local path).") from None
    config = Config(max_pool_connections=max_pool_connections, user_agent_extra="smlocal",
                    retries={"mode": "standard", "max_attempts": 5})
    session = boto3.session.Session(region_name=region)
    return session.client("s3", endpoint_url=endpoint_url or None, config=config)


def _client(client):
    return client if client is not None else make_client()


class LazyClient:
    """The one S3 client of a command, made on first use: a job that names no ``s3://`` URI never
    imports boto3 or looks for credentials. Thread-safe (feeders and downloads share the client)."""

    def __init__(self, endpoint_url: str | None = None, client=None):
        self.endpoint_url = endpoint_url or None
        self._client = client
        self._lock = threading.Lock()

    @property
    def created(self) -> bool:
        return self._client is not None

    def get(self):
        with self._lock:
            if self._client is None:
                self._client = make_client(self.endpoint_url)
            return self._client


# ------------------------------------------------------------------------------------------ errors
def translate_error(exc: BaseException, uri: str, doing: str = "read", context: str = "") -> SmlocalError | None:
    """Map a botocore exception raised while ``doing`` something to ``uri`` to a smlocal error.

    Pure: looks only at the exception. Returns None for exceptions that are not botocore's.
    The message reads ``Cannot <doing> <uri><context>: <cause>. <what to do>``."""
    try:
        from botocore import exceptions as bce
    except ImportError:  # pragma: no cover
        return None
    where = f"Cannot {doing} {uri}{context}"
    if isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError)):
        return CustomerError(
            f"{where}: no AWS credentials were found ({exc}). Configure credentials (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, `aws configure` or `aws sso login`), or give a local path "
            "instead of an s3:// URI.")
    credential_errors = tuple(getattr(bce, name) for name in (
        "CredentialRetrievalError", "TokenRetrievalError", "SSOError", "UnknownCredentialError")
        if hasattr(bce, name))
    if isinstance(exc, credential_errors):
        return CustomerError(f"{where}: the AWS credentials could not be loaded ({exc}). Refresh them "
                             "(for SSO: `aws sso login`) or pick another profile with AWS_PROFILE.")
    if isinstance(exc, (bce.EndpointConnectionError, bce.ConnectTimeoutError)):
        return CustomerError(f"{where}: cannot connect to S3 ({exc}). Check the network and, "
                             f"{_ENDPOINT_HINT}.")
    if isinstance(exc, bce.ParamValidationError):
        return CustomerError(f"{where}: {exc}")
    if isinstance(exc, bce.ClientError):
        return _client_error(exc, uri, where)
    if isinstance(exc, bce.BotoCoreError):
        return PlatformError(f"{where}: {exc}. Retry the job.")
    return None


def _client_error(exc, uri: str, where: str) -> SmlocalError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = error.get("Message") or code
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    operation = getattr(exc, "operation_name", "") or ""
    bucket, key = parse_s3_uri(uri)
    if code == "NoSuchBucket" or (code in ("404", "NotFound") and (not key or operation == "HeadBucket")):
        return CustomerError(f"{where}: the bucket '{bucket}' does not exist (NoSuchBucket). Check the bucket "
                             f"name, the credentials' account and, {_ENDPOINT_HINT}.")
    if code in ("NoSuchKey", "404", "NotFound"):
        return CustomerError(f"{where}: the object '{key}' does not exist in bucket '{bucket}' (NoSuchKey). "
                             "Check the key (S3 keys are case-sensitive).")
    if code in _CREDENTIALS_REJECTED:
        return CustomerError(f"{where}: S3 rejected the AWS credentials ({code}: {message}). Check or refresh "
                             "them (`aws configure`, `aws sso login`, AWS_PROFILE).")
    if code in _ACCESS_DENIED or (status == 403 and code not in _CREDENTIALS_REJECTED):
        permission = _PERMISSION.get(operation, "s3:GetObject/s3:ListBucket")
        resource = f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"
        return CustomerError(f"{where}: access denied ({code or status}: {message}). The credentials in use "
                             f"are not allowed to call {operation or 'this operation'} on bucket '{bucket}'; grant "
                             f"{permission} on {resource} or use other credentials (AWS_PROFILE).")
    if code in _WRONG_REGION or status == 301:
        return CustomerError(f"{where}: the bucket '{bucket}' is in another region ({code}: {message}). "
                             "Set AWS_REGION / AWS_DEFAULT_REGION to the bucket's region.")
    if code == "InvalidBucketName":
        return CustomerError(f"{where}: '{bucket}' is not a valid bucket name ({message}).")
    if code == "PreconditionFailed" or status == 412:
        return CustomerError(f"{where}: the object changed while the job was reading it (its ETag no longer "
                             "matches the listing). Do not modify a channel's data while a job runs; rerun.")
    if code == "InvalidObjectState":
        return CustomerError(f"{where}: the object is archived ({message}); restore it (Glacier) first.")
    if code in _RETRY_LATER or (isinstance(status, int) and status >= 500):
        return PlatformError(f"{where}: S3 answered {code or status} ({message}). Retry later.")
    return CustomerError(f"{where}: {code or status}: {message}")


@contextmanager
def s3_errors(uri: str, doing: str = "read", context: str = "") -> Iterator[None]:
    """Re-raise botocore exceptions from the block as smlocal errors naming ``uri`` (see translate_error)."""
    try:
        yield
    except SmlocalError:
        raise
    except Exception as exc:
        mapped = translate_error(exc, uri, doing, context)
        if mapped is None:
            raise
        raise mapped from exc


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _is_missing_key(exc: BaseException) -> bool:
    return _error_code(exc) in ("NoSuchKey", "404", "NotFound")


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


def safe_relpath(relpath: str, where: str) -> str:
    """``relpath`` normalised to POSIX parts; CustomerError if it is empty or would escape its directory
    (S3 keys may contain ``..`` or leading slashes, which must never be written outside a channel dir)."""
    parts = [p for p in relpath.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise CustomerError(f"{where}: the object name {relpath!r} cannot be used as a file path below the "
                            "channel directory (empty, or containing '..'). Rename the object.")
    return "/".join(parts)


def prefix_relpath(prefix: str, key: str) -> str:
    """Where an object listed under an S3Prefix channel goes below the channel directory.

    As the SDK's local mode: the key after the prefix (``data/train`` + ``data/train/a/x.csv`` ->
    ``a/x.csv``), and the base name when the URI names the object itself. When the prefix ends inside
    a name (``data/tr`` matching ``data/train/x.csv``), the key after the prefix's last ``/``
    (``train/x.csv``), so partial matches keep readable names."""
    if key == prefix:
        return key.rsplit("/", 1)[-1]
    if not prefix or prefix.endswith("/"):
        return key[len(prefix):]
    if key[len(prefix)] == "/":
        return key[len(prefix) + 1:]
    return key[prefix.rfind("/") + 1:]


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
    client = _client(client)
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
                if _is_missing_key(exc):
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
                if _is_missing_key(exc):
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
        _client(client).head_bucket(Bucket=bucket)


# ----------------------------------------------------------------------------------------- sharding
def shard_objects(objects: Sequence[T], host_index: int, host_count: int,
                  distribution: str = "FullyReplicated", *, source: str | None = None) -> list[T]:
    """The objects host ``host_index`` (0-based) of ``host_count`` gets, for any sequence of objects.

    FullyReplicated: all of them. ShardedByS3Key: dealt round-robin in the given (key) order, so every
    host gets about 1/n of the objects, deterministically, and shard i of an SDK record_set() goes to
    host i. More hosts than objects is a CustomerError, as on SageMaker. Pure."""
    items = list(objects)
    if host_count < 1 or not 0 <= host_index < host_count:
        raise ValueError(f"host_index {host_index} is not in range for {host_count} host(s)")
    kind = str(distribution).lower()
    if kind == "fullyreplicated":
        return items
    if kind != "shardedbys3key":
        raise CustomerError(f"S3DataDistributionType {distribution!r} is not one of: FullyReplicated, "
                            "ShardedByS3Key.")
    if host_count > len(items):
        where = f" {source}" if source else ""
        raise CustomerError(f"ShardedByS3Key over {host_count} hosts needs at least {host_count} objects; "
                            f"channel{where} has {len(items)}. Split the data into more objects or use "
                            "FullyReplicated.")
    return items[host_index::host_count]


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
        raw = S3ObjectReader(_client(client), obj.bucket, obj.key, obj.etag, obj.size)
    else:
        bucket, key = parse_s3_uri(obj)
        raw = S3ObjectReader(_client(client), bucket, key)
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
    client = _client(client)
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except SmlocalError:
        raise
    except Exception as exc:
        if _is_missing_key(exc):  # HeadObject answers a bare 404 for a missing bucket too: ask HeadBucket
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
    _upload_many(_client(client), pairs)
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
    _upload_many(_client(client), pairs)
    return [u for _, u in pairs]
