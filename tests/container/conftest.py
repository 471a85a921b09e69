"""Fixtures for the container tests: a Docker engine (or a clear skip), the CPU image built once per session,
and helpers that run it with the docker SDK.

Containers use ``network_mode="host"`` (serving, on a free 127.0.0.1 port) or ``"none"`` (training); this
machine's engine has no bridge network. ``.ci/run`` starts the engine with ``../shared/ci/docker-up.sh``;
elsewhere export ``DOCKER_HOST`` or start Docker. ``SMLOCAL_TEST_IMAGE=TAG`` uses an image built beforehand
instead of building ``smlocal:test``.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from tests.helpers import REPO, free_port

IMAGE_TAG = "smlocal:test"
ENGINE_HINT = ('start one with: eval "$(../shared/ci/docker-up.sh python:3.11-slim '
               'nvidia/cuda:12.4.1-runtime-ubuntu22.04)" (or export DOCKER_HOST)')


def engine():
    """A docker SDK client whose engine answers, else (None, why)."""
    try:
        import docker

        client = docker.from_env(timeout=900)
        client.ping()
        return client, ""
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine here"
        return None, f"{type(exc).__name__}: {exc}"


def build_image(client, tag: str, dockerfile: str = "Dockerfile", buildargs: dict | None = None) -> str:
    """``docker build --network host -f DOCKERFILE -t TAG <repo>``; on failure raise with the log's tail."""
    log: list[str] = []
    started = time.monotonic()
    stream = client.api.build(path=str(REPO), dockerfile=dockerfile, tag=tag, network_mode="host", rm=True,
                              forcerm=True, decode=True, buildargs=buildargs or {})
    for chunk in stream:
        log.append(chunk.get("stream") or chunk.get("status") or "")
        if "error" in chunk:
            tail = "".join(log[-40:])
            hint = ""
            if "pull access denied" in chunk["error"] or "not found" in chunk["error"]:
                hint = ("\nThe base image is missing: import local stand-ins with "
                        "../shared/ci/docker-up.sh python:3.11-slim nvidia/cuda:12.4.1-runtime-ubuntu22.04")
            raise RuntimeError(f"docker build -f {dockerfile} failed: {chunk['error']}{hint}\n{tail}")
    print(f"built {tag} from {dockerfile} in {time.monotonic() - started:.0f} s")
    return tag


@dataclass
class ContainerResult:
    exit_code: int
    logs: str
    base: Path | None = None

    @property
    def failure(self) -> str | None:
        path = self.base / "output" / "failure" if self.base else None
        return path.read_text() if path and path.exists() else None

    def model_file(self, host: str = "algo-1") -> Path:
        assert self.base is not None
        return self.base / "model" / f"model_{host}"


def _user() -> str | None:
    """Run as the caller's uid when not root, so files in bind mounts stay removable."""
    return None if os.getuid() == 0 else f"{os.getuid()}:{os.getgid()}"


def run_image(client, image: str, command, *, base: Path | None = None, env: dict | None = None,
              network: str = "none", working_dir: str | None = None, timeout: float = 600) -> ContainerResult:
    """``docker run --rm [-v BASE:/opt/ml] --network NETWORK IMAGE COMMAND`` and collect exit code + logs."""
    volumes = {str(base): {"bind": "/opt/ml", "mode": "rw"}} if base is not None else None
    container = client.containers.run(image, command, detach=True, environment=env or {}, network_mode=network,
                                      volumes=volumes, working_dir=working_dir, user=_user())
    try:
        try:
            status = container.wait(timeout=timeout)
        except Exception:  # noqa: BLE001 - a timeout: report what it printed
            container.kill()
            raise AssertionError(f"container {command} did not finish in {timeout} s:\n"
                                 f"{container.logs().decode(errors='replace')[-4000:]}") from None
        logs = container.logs(stdout=True, stderr=True).decode(errors="replace")
    finally:
        container.remove(force=True)
    return ContainerResult(int(status["StatusCode"]), logs, base)


def wait_for_http(url: str, what: str, *, alive: Callable[[], bool], logs: Callable[[], str], timeout: float,
                  interval: float = 0.5) -> None:
    """Poll GET ``url`` until it answers 200; fail with ``logs()`` once ``alive()`` is false or at ``timeout``."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        if not alive():
            raise AssertionError(f"{what} exited before answering {url}:\n{logs()[-4000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not answer {url} in {timeout} s:\n{logs()[-4000:]}")
        time.sleep(interval)


def python_probe(client, image: str, code: str) -> list[str]:
    """``docker run IMAGE python -c CODE`` (it must exit 0); the lines it printed."""
    result = run_image(client, image, ["python", "-c", code])
    assert result.exit_code == 0, result.logs
    return result.logs.strip().splitlines()


@dataclass
class Server:
    url: str
    container: object
    stopped_exit_code: int | None = field(default=None)

    def logs(self) -> str:
        return self.container.logs().decode(errors="replace")


@contextlib.contextmanager
def serve_image(client, image: str, model_dir: Path, *, env: dict | None = None, working_dir: str | None = None,
                ready_timeout: float = 120):
    """``docker run --network host -e SAGEMAKER_BIND_TO_PORT=P -v MODEL:/opt/ml/model:ro IMAGE serve``;
    yields a Server once ``/ping`` answers 200, stops it with SIGTERM (as SageMaker does) afterwards."""
    port = free_port()
    container = client.containers.run(
        image, "serve", detach=True, network_mode="host", working_dir=working_dir, user=_user(),
        environment={"SAGEMAKER_BIND_TO_PORT": str(port), **(env or {})},
        volumes={str(model_dir): {"bind": "/opt/ml/model", "mode": "ro"}})
    server = Server(f"http://127.0.0.1:{port}", container)

    def alive() -> bool:
        container.reload()
        return container.status != "exited"

    try:
        wait_for_http(f"{server.url}/ping", "serve", alive=alive, logs=server.logs, timeout=ready_timeout)
        yield server
    finally:
        with contextlib.suppress(Exception):
            container.stop(timeout=20)  # SIGTERM, SIGKILL after 20 s
            server.stopped_exit_code = int(container.wait(timeout=30)["StatusCode"])
        container.remove(force=True)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def docker_client():
    client, why = engine()
    if client is None:
        pytest.skip(f"no Docker engine answers (DOCKER_HOST={os.environ.get('DOCKER_HOST', 'unset')}: {why}); "
                    f"{ENGINE_HINT}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def smlocal_image(docker_client) -> str:
    """The CPU image, built once per session from the checkout (tag ``smlocal:test``); its tag."""
    prebuilt = os.environ.get("SMLOCAL_TEST_IMAGE")
    if prebuilt:
        docker_client.images.get(prebuilt)
        return prebuilt
    return build_image(docker_client, IMAGE_TAG)


@pytest.fixture
def opt_ml(tmp_path) -> Path:
    """An /opt/ml tree to bind-mount, writable by the container's user."""
    root = tmp_path / "opt_ml"
    for sub in ("input/config", "input/data", "model", "output/data"):
        (root / sub).mkdir(parents=True)
    return root
