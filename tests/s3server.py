"""A real S3 API for tests and benchmarks: moto's standalone server, in its own process, on 127.0.0.1.

    server = start_moto_server()            # python -m moto.server -H 127.0.0.1 -p <free port>
    os.environ.update(server.environ(tmp))  # fake credentials + AWS_ENDPOINT_URL_S3 for boto3
    ...
    server.stop()

The server runs as a separate process so its memory (moto keeps objects in memory) never counts
against the process under test. pytest fixtures built on this live in ``tests/functional/conftest_s3.py``.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import free_port

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"
# variables that would make boto3 look beyond the fake credentials / the local endpoint
AWS_VARIABLES_TO_CLEAR = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_ENDPOINT_URL",
    "AWS_REGION", "AWS_CA_BUNDLE",
)


@dataclass
class MotoS3Server:
    endpoint_url: str
    process: subprocess.Popen
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    def environ(self, scratch: str | os.PathLike, credentials: bool = True) -> dict[str, str | None]:
        """Environment for boto3 to use this server only: fake credentials (unless ``credentials`` is
        False), region, AWS_ENDPOINT_URL_S3, empty AWS config files (the user's ~/.aws is never read),
        no instance metadata lookups, no proxy for loopback. None values mean "unset this variable"."""
        scratch = Path(scratch)
        scratch.mkdir(parents=True, exist_ok=True)
        empty = scratch / "aws-empty-config"
        empty.write_text("")
        env: dict[str, str | None] = {name: None for name in AWS_VARIABLES_TO_CLEAR}
        env.update({
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_CONFIG_FILE": str(empty),
            "AWS_SHARED_CREDENTIALS_FILE": str(empty),
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        })
        if credentials:
            env.update(FAKE_CREDENTIALS)
        else:
            env.update({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None})
        return env

    def client(self, service: str = "s3", **credentials):
        """A boto3 client of this server with explicit (default: fake) credentials, whatever the env."""
        import boto3

        session = boto3.session.Session(
            aws_access_key_id=credentials.get("aws_access_key_id", FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]),
            aws_secret_access_key=credentials.get("aws_secret_access_key",
                                                  FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]),
            region_name=REGION)
        return session.client(service, endpoint_url=self.endpoint_url)

    def set_auth(self, enforced: bool) -> None:
        """Turn moto's IAM enforcement on (every later request is authenticated and authorised against
        the users created in this server) or off again (moto-api/reset-auth)."""
        body = b"0" if enforced else str(float("inf")).encode()
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset-auth", data=body, method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as response:
            json.loads(response.read())

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _server_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env["AWS_DEFAULT_REGION"] = REGION
    env.update(extra or {})
    return env


def start_moto_server(extra_env: dict[str, str] | None = None, log_dir: str | os.PathLike | None = None,
                      timeout: float = 60.0) -> MotoS3Server:
    """Start ``python -m moto.server`` on a free loopback port and wait until it answers.

    ``extra_env``: settings for the server (e.g. ``MOTO_S3_DEFAULT_KEY_BUFFER_SIZE`` to keep large
    objects in memory rather than spooling them to disk)."""
    import tempfile

    log_dir = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="moto-"))
    last_error = None
    for _ in range(3):  # a free port can be taken between probing and binding: try another
        port = free_port()
        log_path = log_dir / f"moto-{port}.log"
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                       stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=_server_env(extra_env))
        server = MotoS3Server(f"http://127.0.0.1:{port}", process, log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"{server.endpoint_url}/moto-api/", timeout=2):
                    return server
            except OSError as exc:
                last_error = exc
                time.sleep(0.1)
        server.stop()
    raise RuntimeError(f"moto server did not start ({last_error}); log: {log_path.read_text()[-2000:]}")


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 in front of the server that drops its FIRST connection after
    ``cut_after`` bytes of response and passes later connections through: a real dropped download,
    for testing resume/retry without patching anything."""

    def __init__(self, upstream_url: str, cut_after: int):
        import threading

        host, port = upstream_url.rsplit("//", 1)[1].split(":")
        self._upstream = (host, int(port))
        self._cut_after = cut_after
        self.connections = 0
        self.cuts = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.endpoint_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            budget = self._cut_after if self.connections == 1 else None
            upstream = socket.create_connection(self._upstream)
            threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, budget), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, budget: int | None) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if budget is not None:
                    if len(data) >= budget:
                        sink.sendall(data[:budget])
                        self.cuts += 1
                        break
                    budget -= len(data)
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self._listener.close()
