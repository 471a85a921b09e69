"""S3 URIs: the one rule for "is this s3://", parsing and joining, and where a key lands below a channel.

Pure string logic with no boto3: the job spec needs only this module.
"""
from __future__ import annotations

from smlocal.errors import CustomerError

MANIFEST_NAME = ".amazon.manifest"  # what the SDK's record_set() / upload_numpy_to_s3_shards writes
DATA_TYPES = ("S3Prefix", "ManifestFile")  # how an S3Uri is read: a key-name prefix, or a manifest's URI


def is_s3_uri(value: object) -> bool:
    """True for strings starting with ``s3://`` (any case of the scheme)."""
    return isinstance(value, str) and value[:5].lower() == "s3://"


def is_manifest_uri(uri: str) -> bool:
    """An ``s3://`` URI naming an SDK manifest (``.../.amazon.manifest``)."""
    return is_s3_uri(uri) and uri.rstrip("/").rsplit("/", 1)[-1] == MANIFEST_NAME


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
