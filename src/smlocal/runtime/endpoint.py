"""Local endpoints: serve a model.tar.gz with the container's ``serve`` on a port of this machine.

The archive is extracted safely into a fresh directory (``archives.safe_extract``), ``serve`` runs as
a process or a container (host network, ``SAGEMAKER_BIND_TO_PORT``), and ``/ping`` is polled until it
answers. When it does not come up, the error says why: the exit code and the server's last log lines.
Each endpoint has its own port and directory, so several can run at once.
"""
from __future__ import annotations

import collections
import http.client
import json
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from smlocal.archives import copy_model_dir, safe_extract
from smlocal.environment import Paths
from smlocal.errors import CustomerError
from smlocal.runtime.backends import Backend, Run
from smlocal.runtime.ports import LOOPBACK, free_port, port_in_use
from smlocal.runtime.progress import Display
from smlocal.serving.config import PING_TOKEN_HEADER, TOKEN_VARS

READY_TIMEOUT_S = 120.0
STOP_GRACE_S = 30.0  # SageMaker gives a serving container 30 s between SIGTERM and SIGKILL
HOST = LOOPBACK


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # the server's response headers

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


def request(port: int, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None,
            timeout: float = 60.0, host: str = HOST) -> Response:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return Response(resp.status, resp.getheader("Content-Type", ""), resp.read(), dict(resp.getheaders()))
    finally:
        conn.close()


def invoke(port: int, body: bytes, content_type: str, accept: str | None = None, timeout: float = 60.0,
           host: str = HOST, headers: Mapping[str, str] | None = None) -> Response:
    """POST /invocations, like InvokeEndpoint. ``headers``: more request headers, e.g. InvokeEndpoint's
    ``X-Amzn-SageMaker-Custom-Attributes``, passed to the container as they are."""
    sent = {**(headers or {}), "Content-Type": content_type}
    if accept:
        sent["Accept"] = accept
    return request(port, "POST", "/invocations", body, sent, timeout, host)


class Endpoint:
    """One served model. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(self, model: str | Path, backend: Backend, port: int | None = None,
                 env: Mapping[str, str] | None = None, display: Display | None = None, name: str | None = None,
                 ready_timeout: float = READY_TIMEOUT_S, workers: int | None = None):
        self.model = Path(model)
        self.backend = backend
        self.port = port or free_port()
        # smlocal's server listens on loopback only for local endpoints (other images ignore this)
        # MALLOC_ARENA_MAX: the server's request threads would each grow a glibc malloc arena that keeps
        # freed memory; two keep its RSS flat (the images set the same)
        self.env = {"SMLOCAL_BIND_HOST": HOST, "MALLOC_ARENA_MAX": "2", **(env or {})}
        # smlocal's server answers /ping with this token: readiness is its answer, not another server's on the port
        self.token = secrets.token_hex(16)
        self.env[TOKEN_VARS[0]] = self.token
        if workers:
            self.env["MODEL_SERVER_WORKERS"] = str(workers)
        self.display = display
        self.name = name or f"endpoint-{self.port}"
        self.ready_timeout = ready_timeout
        self.root: Path | None = None
        self.run: Run | None = None
        self.log_tail: collections.deque[str] = collections.deque(maxlen=40)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _on_line(self, name: str, line: str) -> None:
        self.log_tail.append(line)
        if self.display is not None:
            self.display.line(line, prefix=name)

    def start(self) -> "Endpoint":
        if port_in_use(self.port):
            raise CustomerError(f"Port {self.port} is already in use on this machine. Choose another with --port "
                                "(each endpoint needs its own port).")
        self.root = Path(tempfile.mkdtemp(prefix=f"smlocal-{self.name}-"))
        try:
            model_dir = Paths(self.root).model_dir
            if self.model.is_dir():
                copy_model_dir(self.model, model_dir)  # a model directory: served as it is
            else:
                names = safe_extract(self.model, model_dir)
                if not names:
                    raise CustomerError(f"Model archive {self.model} is empty: expected model_algo-1 inside.")
            self.run = self.backend.start_serving(self.root, self.port, self.env, self._on_line, name=self.name)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _diagnosis(self, what: str) -> CustomerError:
        tail = "\n".join(f"    {line}" for line in list(self.log_tail)[-20:]) or "    (no output)"
        return CustomerError(f"The endpoint for {self.model} {what}. Last lines of the server's log:\n{tail}")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            code = self.run.poll()
            if code is not None:
                self.run.finish(2)
                raise self._diagnosis(f"exited with code {code} before answering /ping")
            if self.ping(own=True):
                return
            if time.monotonic() > deadline:
                raise self._diagnosis(f"did not answer /ping on port {self.port} within {self.ready_timeout:.0f} s")
            time.sleep(0.2)

    def ping(self, own: bool = False) -> bool:
        """/ping answers 200; with ``own``, from the server this endpoint started. A server that sends no
        token (another image) is taken at its word: only smlocal's server can tell itself from another."""
        try:
            resp = request(self.port, "GET", "/ping", timeout=2)
        except (ConnectionError, OSError, http.client.HTTPException):
            return False
        token = {k.lower(): v for k, v in resp.headers.items()}.get(PING_TOKEN_HEADER.lower())
        return resp.status == 200 and (not own or token in (None, self.token))

    def invoke(self, body: bytes, content_type: str, accept: str | None = None, timeout: float = 60.0,
               headers: Mapping[str, str] | None = None) -> Response:
        return invoke(self.port, body, content_type, accept, timeout, headers=headers)

    def execution_parameters(self) -> dict | None:
        """The container's GET /execution-parameters answer, or None when it has none."""
        try:
            resp = request(self.port, "GET", "/execution-parameters", timeout=10)
        except (ConnectionError, OSError, http.client.HTTPException):
            return None
        if resp.status != 200:
            return None
        try:
            answer = resp.json()
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        if self.run is not None:
            if self.run.poll() is None:
                self.run.terminate()
                if self.run.wait(grace) is None:
                    self.run.kill()
                    self.run.wait(10)
            self.run.finish(2)
            self.run = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> "Endpoint":
        return self.start() if self.run is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
