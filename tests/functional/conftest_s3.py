"""pytest fixtures for S3 tests against a real S3 API (moto's server on 127.0.0.1, see tests/s3server.py).

Not a conftest.py (that one belongs to the suite): a test module loads them with
``pytest_plugins = ["tests.functional.conftest_s3"]``.
"""
from __future__ import annotations

import uuid

import pytest

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
