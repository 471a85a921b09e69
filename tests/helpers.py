"""Shared test helpers: lay out a temporary /opt/ml tree and run the container entry points on it."""
from __future__ import annotations

import contextlib
import errno
import importlib.util
import io
import signal
import socket
import threading
import time

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
CONTAINER = REPO / "container"
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "aws-builtin"

# Training on several hosts goes through MXNet's KVStore; the numpy 2 lane (scripts/test.sh) has no MXNet.
needs_mxnet = pytest.mark.skipif(importlib.util.find_spec("mxnet") is None,
                                 reason="multi-host training needs MXNet (absent in the numpy 2 lane)")


@dataclass
class TrainResult:
    returncode: int
    stdout: str
    stderr: str
    base: Path

    @property
    def failure(self) -> str | None:
        path = self.base / "output" / "failure"
        return path.read_text() if path.exists() else None

    def model_file(self, host: str = "algo-1") -> Path:
        return self.base / "model" / f"model_{host}"


def write_config(base: Path, hyperparameters: dict, channels: dict, hosts=("algo-1",), current="algo-1") -> None:
    """Write the three config files. ``channels``: name -> inputdataconfig entry (dict)."""
    cfg = base / "input" / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    (base / "model").mkdir(parents=True, exist_ok=True)
    (base / "output" / "data").mkdir(parents=True, exist_ok=True)
    (cfg / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in hyperparameters.items()}))
    (cfg / "inputdataconfig.json").write_text(json.dumps(channels))
    (cfg / "resourceconfig.json").write_text(
        json.dumps({"current_host": current, "hosts": list(hosts), "network_interface_name": "eth0"})
    )


def run_container(command: str, base: Path, algorithm: str = "kmeans", env: dict | None = None,
                  timeout: float = 300, **popen) -> TrainResult:
    """Run ``container/<command>`` as a subprocess against ``base`` (SAGEMAKER_BASE_DIR)."""
    full_env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SMLOCAL_ALGORITHM": algorithm, **(env or {})}
    proc = subprocess.run([sys.executable, str(CONTAINER / command)], env=full_env, capture_output=True,
                          text=True, timeout=timeout, **popen)
    return TrainResult(proc.returncode, proc.stdout, proc.stderr, base)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``container/serve`` as a real gunicorn on a free loopback port."""

    def __init__(self, base: Path, env: dict | None = None):
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(base / "serve.log", "w+")
        full_env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_BIND_TO_PORT": str(self.port),
                    "SMLOCAL_BIND_HOST": "127.0.0.1", "MODEL_SERVER_WORKERS": "2", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, str(CONTAINER / "serve")], env=full_env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> "Server":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.output()}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(self.url + "/ping", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        raise AssertionError(f"serve did not answer /ping within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.base / "serve.log").read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=40)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.log.close()

    def invoke(self, data, serializer, deserializer):
        """What a Predictor does: serialize, POST with CONTENT_TYPE/ACCEPT, deserialize the stream."""
        accept = deserializer.ACCEPT if isinstance(deserializer.ACCEPT, str) else ", ".join(deserializer.ACCEPT)
        resp = requests.post(self.url + "/invocations", data=serializer.serialize(data), timeout=30,
                             headers={"Content-Type": serializer.CONTENT_TYPE, "Accept": accept})
        assert resp.status_code == 200, resp.text
        return deserializer.deserialize(io.BytesIO(resp.content), resp.headers["Content-Type"])


class FifoFeeder:
    """SageMaker's Pipe mode for tests: FIFOs ``<channel>_<n>`` in ``data_dir``, each filled from a thread.

    ``feeds``: channel -> a list of payloads (one FIFO each), or one payload served again for every pass the
    algorithm opens (up to ``passes``). Opening polls with O_NONBLOCK so a job that stops reading never hangs
    the test; FIFOs are mode 0666 so a container running as another user can read them.
    """

    def __init__(self, data_dir: Path, feeds: dict, passes: int = 30):
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.served: dict[str, int] = {name: 0 for name in feeds}
        self.threads = []
        for name, payloads in feeds.items():
            payloads = payloads if isinstance(payloads, list) else [payloads] * passes
            thread = threading.Thread(target=self._feed, args=(Path(data_dir), name, payloads), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _feed(self, data_dir: Path, name: str, payloads: list) -> None:
        try:
            for n, payload in enumerate(payloads):
                path = data_dir / f"{name}_{n}"
                os.mkfifo(path)
                os.chmod(path, 0o666)
                fd = self._open(path)
                if fd is None:
                    return
                os.set_blocking(fd, True)
                try:
                    view = memoryview(payload)
                    while view:
                        view = view[os.write(fd, view[:1 << 16]):]
                except BrokenPipeError:  # the reader closed early: allowed by the protocol
                    pass
                finally:
                    os.close(fd)
                self.served[name] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by close()
            self.errors.append(exc)

    def _open(self, path: Path) -> int | None:
        while not self.stop.is_set():
            try:
                return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                time.sleep(0.01)
        return None

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        assert not self.errors, self.errors


def records_read_in_epoch0(log: Path) -> int:
    """Rows a host read in epoch 0, from its ``training_data_iter`` ``#metrics`` line (spec §5.3)."""
    for line in Path(log).read_text().splitlines():
        if line.startswith("#metrics ") and '"training_data_iter"' in line:
            metrics = json.loads(line[len("#metrics "):])
            if metrics["Dimensions"].get("epoch") == 0:
                return int(metrics["Metrics"]["Number of Records Since Last Reset"]["sum"])
    raise AssertionError(f"no training_data_iter metrics in {log}")


def channel(content_type: str = "application/x-recordio-protobuf", mode: str = "File") -> dict:
    """One inputdataconfig.json entry."""
    return {"ContentType": content_type, "TrainingInputMode": mode, "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None"}


def put_files(base: Path, name: str, *parts: bytes) -> None:
    """File-mode channel ``name`` under ``base``: one file ``part-<i>`` per payload."""
    folder = base / "input" / "data" / name
    folder.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(parts):
        (folder / f"part-{i}").write_bytes(data)


@contextlib.contextmanager
def smlocal_serve(model: str, env: dict | None = None):
    """``smlocal serve --model MODEL`` (process backend) on a free port until its endpoint is ready; yields the
    port. On exit it is stopped with Ctrl-C (SIGINT), and it must exit 0."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "smlocal", "serve", "--model", str(model), "--port", str(port),
                               "--workers", "1", "--backend", "process"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in server.stdout:
            if "endpoint ready" in line:
                break
        else:
            raise AssertionError("smlocal serve exited before the endpoint was ready")
        yield port
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
    assert server.returncode == 0


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie or a reaped process counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] not in ("Z", "X")
    except FileNotFoundError:
        return False
