"""Shared test helpers: temporary /opt/ml trees and the container entry points, test data, job bodies, the CLI."""
from __future__ import annotations

import contextlib
import errno
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests

from smlocal.runtime.ports import free_port

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


def train_builtin(base: Path, hps: dict, channels: dict, *, algorithm: str, env: dict | None = None,
                  timeout: float = 180) -> TrainResult:
    """Write the config files, then run ``container/train`` with a built-in ``algorithm`` (which waits up to
    20 s for a Pipe-mode FIFO)."""
    write_config(base, hps, channels)
    return run_container("train", base, algorithm=algorithm, env={"SMLOCAL_PIPE_WAIT_SECONDS": "20", **(env or {})},
                         timeout=timeout)


def assert_trained(result: TrainResult) -> None:
    """The job succeeded: exit 0 and no ``output/failure``."""
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-4000:]
    assert result.failure is None


def metrics_lines(stdout: str) -> list[dict]:
    """The ``#metrics`` JSON lines of a job's output."""
    return [json.loads(line[len("#metrics "):]) for line in stdout.splitlines() if line.startswith("#metrics ")]


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
    """Rows a host read in epoch 0, from its ``training_data_iter`` ``#metrics`` line (as the built-ins log it)."""
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


def read_until_ready(proc: subprocess.Popen) -> list[str]:
    """The lines an ``smlocal serve`` prints up to "endpoint ready"; AssertionError if it exits first."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "endpoint ready" in line:
            return lines
    raise AssertionError("smlocal serve exited before the endpoint was ready:\n" + "".join(lines))


# Stalled clients: partial headers, a body short of its Content-Length, and nothing at all; sent, then nothing more.
STALLED_REQUESTS = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/",
                    b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 1000\r\n\r\n1,",
                    b"")


@contextlib.contextmanager
def smlocal_serve(model: str, env: dict | None = None):
    """``smlocal serve --model MODEL`` (process backend) on a free port until its endpoint is ready; yields the
    port. On exit it is stopped with Ctrl-C (SIGINT), and it must exit 0."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "smlocal", "serve", "--model", str(model), "--port", str(port),
                               "--workers", "1", "--backend", "process"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        read_until_ready(server)
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


def training_env(base: Path, channels: dict | None = None, files: dict[str, bytes] | None = None):
    """The TrainingEnv of a job under ``base``: config files for ``channels`` (default: one File-mode ``train``)
    and ``files`` (path under input/data -> bytes) written first."""
    from smlocal.environment import load_training_env

    channels = channels if channels is not None else {"train": {"TrainingInputMode": "File"}}
    write_config(base, {}, channels)
    for rel, data in (files or {}).items():
        path = base / "input" / "data" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return load_training_env(base)


# ----------------------------------------------------------------------------------------- assertions


def assert_customer_error(result: TrainResult, *fragments: str) -> None:
    """The job failed on the customer's side: exit 2, ``output/failure`` starting ``Customer Error: `` and
    holding every fragment, the same text logged, and nothing (not even a partial file) in the model dir."""
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    failure = result.failure
    assert failure is not None and failure.startswith("Customer Error: "), failure
    for fragment in fragments:
        assert fragment in failure, (fragment, failure)
    assert failure in result.stdout, result.stdout[-3000:]
    assert not result.model_file().exists()
    assert not list((result.base / "model").iterdir())


def assert_found_centers(found: np.ndarray, truth, tol: float) -> None:
    """k-means found every true center: the nearest learned center is within ``tol`` (Euclidean) of each."""
    truth = np.asarray(truth)
    assert found.shape == truth.shape, found
    nearest = np.linalg.norm(truth[:, None, :] - found[None, :, :], axis=2).min(axis=1)
    assert nearest.max() < tol, f"learned centers {found} miss the true ones by {nearest}"


# ------------------------------------------------------------------------------------ jobs and the CLI


def job_channel(name: str, source, distribution: str = "FullyReplicated", **fields) -> dict:
    """One InputDataConfig entry of a CreateTrainingJob body. ``source``: a local Path (given as its
    ``file://`` URI) or a string used as it is (a plain path, an s3:// URI); ``fields``: ContentType,
    CompressionType, RecordWrapperType, InputMode, ShuffleConfig."""
    uri = f"file://{source}" if isinstance(source, Path) else source
    return {"ChannelName": name, **fields, "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": distribution}}}


def training_job(name: str, channels: list[dict], output: Path, *, image: str, hps: dict | None = None,
                 mode: str = "File", count: int = 1, instance_type: str = "ml.m5.large", **extra) -> dict:
    """A CreateTrainingJob body writing under the local ``output``; ``extra``: RoleArn, StoppingCondition,
    Environment, ..."""
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": mode},
        "HyperParameters": dict(hps or {}),
        "InputDataConfig": list(channels),
        "OutputDataConfig": {"S3OutputPath": str(output)},
        "ResourceConfig": {"InstanceCount": count, "InstanceType": instance_type, "VolumeSizeInGB": 1},
        **extra,
    }


def run_job(body: dict, backend=None, **options):
    """``run_training`` of a CreateTrainingJob body (process backend by default), its progress display muted."""
    from smlocal.runtime.jobs import run_training
    from smlocal.runtime.jobspec import parse_job
    from smlocal.runtime.process import ProcessBackend
    from smlocal.runtime.progress import Display

    return run_training(parse_job(body), backend or ProcessBackend(), Display(live=False, stream=io.StringIO()),
                        **options)


def run_cli(*args: str, timeout: float = 300, **run) -> subprocess.CompletedProcess:
    """``python -m smlocal ARGS`` from the checkout, output captured as text; ``run``: env, input, ..."""
    return subprocess.run([sys.executable, "-m", "smlocal", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, **run)
