"""Fixtures for the API tests: one ``smlocal api`` server on a free loopback port, driven by the real,
unmodified boto3 and sagemaker SDK.

The SDK waits with fixed sleeps (30 s between endpoint checks, 30 s between job status checks while it
tails logs). ``fast_sdk_clock`` gives the SDK's session module a clock whose sleeps return after at most
a quarter second while its time advances by the full amount, so the SDK's own wait loops run as written,
only quicker. Nothing on the server side is replaced.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest

from tests.helpers import REPO
from tests.s3server import AWS_VARIABLES_TO_CLEAR

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
INSTANCE = "ml.m5.large"


@pytest.fixture(scope="session")
def api_env(tmp_path_factory):
    """No AWS settings of the machine leak in (the servers keep their S3 download cache in their state dir)."""
    scratch = tmp_path_factory.mktemp("aws")
    empty = scratch / "empty-config"
    empty.write_text("")
    saved = dict(os.environ)
    for name in AWS_VARIABLES_TO_CLEAR:
        os.environ.pop(name, None)
    os.environ.update({"AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty),
                       "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1,localhost",
                       "no_proxy": "127.0.0.1,localhost"})
    yield scratch
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def api_server(api_env, tmp_path_factory):
    from smlocal.api.server import ApiServer

    server = ApiServer(tmp_path_factory.mktemp("api-state"), port=0).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def boto(api_server):
    from smlocal.api.session import LocalBotoSession

    return LocalBotoSession(api_server.url)


@pytest.fixture(scope="session")
def sm(boto):
    return boto.client("sagemaker")


@pytest.fixture(scope="session")
def s3(boto):
    return boto.client("s3")


@pytest.fixture(scope="session")
def bucket(s3):
    name = "smlocal-api-tests"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def sdk_session(api_server):
    import smlocal

    return smlocal.sagemaker_session(api_server.url)


class ApiProcess:
    """``smlocal api`` as a user starts it: a process on ``port``, its banner read (up to the export lines)."""

    def __init__(self, state_dir, port: int, env: dict, *args: str):
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen([sys.executable, "-m", "smlocal", "api", "--port", str(port),
                                         "--state-dir", str(state_dir), *args], cwd=REPO, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.banner: list[str] = []
        while not self.banner or not self.banner[-1].startswith("export AWS_DEFAULT_REGION"):
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"smlocal api exited: {''.join(self.banner)}")
            self.banner.append(line)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        self.process.stdout.close()


class FastClock:
    """``time``'s interface for the SDK: sleeps are short in real time, time advances in full."""

    def __init__(self, longest_real_sleep: float = 0.25):
        self.offset = 0.0
        self.longest = longest_real_sleep

    def time(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        real = min(seconds, self.longest)
        time.sleep(real)
        self.offset += seconds - real


def _patch_sdk_clock(monkeypatch) -> FastClock:
    import sagemaker.session

    clock = FastClock()
    shim = types.SimpleNamespace(time=clock.time, sleep=clock.sleep, gmtime=time.gmtime, strftime=time.strftime,
                                 monotonic=time.monotonic, localtime=time.localtime)
    monkeypatch.setattr(sagemaker.session, "time", shim)
    return clock


@pytest.fixture
def fast_sdk_clock(monkeypatch):
    return _patch_sdk_clock(monkeypatch)


@pytest.fixture(scope="module")
def fast_sdk_clock_module():
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _patch_sdk_clock(monkeypatch)


def wait_for(describe, status_key: str, timeout: float = 120.0, done=("Completed", "Failed", "Stopped")) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = describe()
        if answer[status_key] in done:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"still {answer[status_key]} after {timeout} s: {answer}")
        time.sleep(0.3)


def csv_body(X: np.ndarray, y: np.ndarray | None = None) -> bytes:
    rows = X if y is None else np.column_stack([y, X])
    return ("\n".join(",".join(f"{v:.6g}" for v in row) for row in rows) + "\n").encode()


def digits(n: int = 600):
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data[:n].astype("float32"), data.target[:n].astype("float32")
