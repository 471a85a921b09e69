"""Tests of the KVStore cluster's parts that need no MXNet: peer errors, the failure path, roles dying with
their parent."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from smlocal.algorithms.cluster.kvstore import _peer_error
from smlocal.algorithms.cluster.monitor import Failure
from smlocal.errors import AlgorithmError, CustomerError
from tests.helpers import process_alive


def test_a_peer_failure_keeps_its_class_and_names_the_host():
    err = _peer_error(Failure("failed", "algo-2", "Customer Error: No training data found in channel 'train'."))
    assert isinstance(err, CustomerError) and str(err) == "host algo-2 failed: No training data found in channel 'train'."
    assert type(_peer_error(Failure("lost", "algo-3", "lost contact with host algo-3."))) is AlgorithmError


def _die(failure: Path, error: str) -> subprocess.CompletedProcess:
    """A second host's ``DistCluster`` (never started) failing on ``error`` raised in a process of its own."""
    code = f"""
from pathlib import Path
from smlocal.algorithms.cluster.kvstore import DistCluster
from smlocal.algorithms.cluster.settings import cluster_settings
from smlocal.errors import CustomerError
settings = cluster_settings(("algo-1", "algo-2"), "algo-2", {{"DMLC_PS_ROOT_URI": "127.0.0.1"}})
cluster = DistCluster(settings, Path({str(failure)!r}))
try:
    raise {error}
except Exception as exc:
    cluster._die(exc)
raise SystemExit("_die returned")
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_a_failing_host_writes_its_failure_and_exits_with_its_code(tmp_path):
    failure = tmp_path / "output" / "failure"
    proc = _die(failure, 'CustomerError("No training data found in channel \'train\'.")')
    assert proc.returncode == 2, proc.stderr
    assert failure.read_text() == "Customer Error: No training data found in channel 'train'."
    assert "Customer Error: No training data found" in proc.stderr  # logged as well


def test_a_host_failing_on_a_bug_logs_the_traceback_and_keeps_the_first_failure(tmp_path):
    failure = tmp_path / "output" / "failure"
    failure.parent.mkdir(parents=True)
    failure.write_text("Customer Error: the first cause")
    proc = _die(failure, 'ValueError("oops")')
    assert proc.returncode == 1, proc.stderr
    assert failure.read_text() == "Customer Error: the first cause"
    assert "Algorithm Error: An unexpected error occurred (ValueError: oops)" in proc.stderr
    assert "Traceback" in proc.stderr


def test_kvstore_roles_die_with_their_parent(tmp_path):
    """The scheduler/server guard: a process that called _die_with_parent is killed with its parent."""
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", f"""
import os, subprocess, sys, time
code = "from smlocal.algorithms.cluster.kvstore import _die_with_parent; _die_with_parent({{}}); import time; time.sleep(60)"
child = subprocess.Popen([sys.executable, "-c", code.format(os.getpid())])
open({str(pid_file)!r}, "w").write(str(child.pid))
time.sleep(60)
"""])
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int(pid_file.read_text())
    time.sleep(1.0)  # let the child set PR_SET_PDEATHSIG
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 5
    while process_alive(child):
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.05)
