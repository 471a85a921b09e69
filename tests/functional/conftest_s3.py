"""pytest fixtures and helpers for S3 tests against a real S3 API (moto's server on 127.0.0.1, see
tests/s3server.py).

Not a conftest.py (that one belongs to the suite): a test module loads them with
``pytest_plugins = ["tests.functional.conftest_s3"]``.
"""
from __future__ import annotations

import uuid

import pytest

from smlocal.runtime.s3.cache import fetch_to_cache, place
from smlocal.runtime.s3.objects import open_object_stream
from tests.s3server import MotoS3Server, start_moto_server


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """One moto server for the session; tests use their own buckets."""
    pytest.importorskip("moto.server")
    server = start_moto_server(log_dir=tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def s3_env(moto_server: MotoS3Server, monkeypatch, tmp_path) -> MotoS3Server:
    """Point boto3 at the server through the environment (as a user's AWS_ENDPOINT_URL_S3 would), with
    fake credentials, empty AWS config files and a fresh smlocal S3 cache."""
    for name, value in moto_server.environ(tmp_path / "aws").items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("SMLOCAL_S3_CACHE", str(tmp_path / "s3-cache"))
    return moto_server


@pytest.fixture
def bucket(s3_env: MotoS3Server) -> str:
    """A new, empty bucket."""
    name = f"smlocal-test-{uuid.uuid4().hex[:12]}"
    s3_env.client().create_bucket(Bucket=name)
    return name


def put(client, bucket_name: str, key: str, body: bytes) -> str:
    """PutObject ``body`` at ``key``; its ETag."""
    return client.put_object(Bucket=bucket_name, Key=key, Body=body)["ETag"].strip('"')


def download_objects(objects, dest_dir, cache_dir, **kwargs) -> list:
    """What File mode does with a host's objects: through the cache, then placed at their relpath."""
    cached = fetch_to_cache(objects, cache_dir, **kwargs)
    return [place(source, dest_dir / obj.name) for obj, source in zip(objects, cached, strict=True)]


def read_stream(obj, client=None, chunk: int = 1 << 20) -> bytes:
    """An object's bytes as a Pipe feeder reads them: chunk by chunk from ``open_object_stream``."""
    with open_object_stream(obj, client) as stream:
        return b"".join(iter(lambda: stream.read(chunk), b""))
