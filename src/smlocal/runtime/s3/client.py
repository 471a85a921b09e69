"""The boto3 S3 client: made on the standard AWS chain, and only when a command meets an ``s3://`` URI.

The client follows the standard AWS chain (environment, profile, SSO, instance role), region
included; the endpoint comes from an explicit ``endpoint_url`` (``--s3-endpoint-url``) or
``AWS_ENDPOINT_URL_S3``, which botocore reads itself. boto3 is imported when a client is made.
"""
from __future__ import annotations

import threading

from smlocal.errors import CustomerError


def make_client(endpoint_url: str | None = None, *, region: str | None = None, max_pool_connections: int = 32):
    """A boto3 S3 client on the standard credential chain.

    ``endpoint_url`` wins over ``AWS_ENDPOINT_URL_S3`` (which botocore applies when it is None). The
    connection pool is sized for the parallel downloads in ``s3.cache``. Clients are thread-safe."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:  # pragma: no cover - boto3 is a dependency; a trimmed install may lack it
        raise CustomerError("s3:// URIs need boto3: pip install boto3 (or give a local path).") from None
    config = Config(max_pool_connections=max_pool_connections, user_agent_extra="smlocal",
                    retries={"mode": "standard", "max_attempts": 5})
    session = boto3.session.Session(region_name=region)
    return session.client("s3", endpoint_url=endpoint_url or None, config=config)


def client_or_default(client):
    """``client``, or a default one when None (functions that take an optional client)."""
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
