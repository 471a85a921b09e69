"""Serving settings from the environment, read once when the server starts (never at import)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional

from smlocal.errors import CustomerError

DEFAULT_PORT = 8080
DEFAULT_TIMEOUT = 60
DEFAULT_MAX_PAYLOAD_MB = 6
MAX_PAYLOAD_MB_LIMIT = 100  # SageMaker's own ceiling for MaxPayloadInMB
MB = 1024 * 1024

# first name set wins; the SageMaker toolkits' names and the scikit BYO example's names both work
PORT_VARS = ("SAGEMAKER_BIND_TO_PORT",)
WORKER_VARS = ("MODEL_SERVER_WORKERS", "SAGEMAKER_MODEL_SERVER_WORKERS", "NUM_WORKERS")
TIMEOUT_VARS = ("MODEL_SERVER_TIMEOUT", "SAGEMAKER_MODEL_SERVER_TIMEOUT")
PAYLOAD_VARS = ("SAGEMAKER_MAX_PAYLOAD_IN_MB",)
ACCEPT_VARS = ("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT",)
HOST_VARS = ("SMLOCAL_BIND_HOST",)  # ours: 0.0.0.0 in a container, 127.0.0.1 for local runs and tests
THREAD_VARS = ("SMLOCAL_SERVER_THREADS",)  # ours: slow-lane threads per worker (gunicorn alone)
TOKEN_VARS = ("SMLOCAL_ENDPOINT_TOKEN",)  # ours: set by the runtime for each endpoint it starts
# ours: a client silent this long between two reads of its headers or body is dropped (or answered 408)
CLIENT_READ_TIMEOUT_VARS = ("SMLOCAL_CLIENT_READ_TIMEOUT",)
DEFAULT_CLIENT_READ_TIMEOUT = 20
# /ping answers the token in this header, so the runtime knows the server on its port is the one it started
PING_TOKEN_HEADER = "X-Smlocal-Endpoint-Token"
DEFAULT_THREADS = 8


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _lookup(env: Mapping[str, str], names: tuple[str, ...]) -> tuple[Optional[str], Optional[str]]:
    for name in names:
        value = env.get(name)
        if value is not None and value.strip():
            return name, value.strip()
    return None, None


def _int(env, names, default: int, minimum: int, maximum: Optional[int] = None) -> int:
    name, raw = _lookup(env, names)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bound = f"an integer from {minimum} to {maximum}" if maximum is not None else f"an integer >= {minimum}"
        raise CustomerError(f"Environment variable {name}='{raw}' is invalid; set it to {bound}.")
    return value


@dataclass(frozen=True)
class ServingConfig:
    port: int = DEFAULT_PORT
    host: str = "0.0.0.0"
    workers: int = 1
    timeout: int = DEFAULT_TIMEOUT
    max_payload_mb: int = DEFAULT_MAX_PAYLOAD_MB
    default_accept: str = "application/json"
    threads: int = DEFAULT_THREADS
    ping_token: Optional[str] = None
    client_read_timeout: int = DEFAULT_CLIENT_READ_TIMEOUT

    @property
    def max_payload_bytes(self) -> int:
        return self.max_payload_mb * MB

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "ServingConfig":
        env = os.environ if environ is None else environ
        return cls(
            port=_int(env, PORT_VARS, DEFAULT_PORT, 1, 65535),
            host=_lookup(env, HOST_VARS)[1] or "0.0.0.0",
            workers=_int(env, WORKER_VARS, cpu_count(), 1),
            timeout=_int(env, TIMEOUT_VARS, DEFAULT_TIMEOUT, 1),
            max_payload_mb=_int(env, PAYLOAD_VARS, DEFAULT_MAX_PAYLOAD_MB, 1, MAX_PAYLOAD_MB_LIMIT),
            default_accept=(_lookup(env, ACCEPT_VARS)[1] or "application/json"),
            threads=_int(env, THREAD_VARS, DEFAULT_THREADS, 1),
            ping_token=_lookup(env, TOKEN_VARS)[1],
            client_read_timeout=_int(env, CLIENT_READ_TIMEOUT_VARS, DEFAULT_CLIENT_READ_TIMEOUT, 1),
        )
