"""The execution backends' contract: both backends and both kinds of run offer what the runner calls."""
from __future__ import annotations

import inspect
import signal
import sys

import pytest

from smlocal.runtime.backends import Backend, Run
from smlocal.runtime.docker import ContainerRun, DockerBackend
from smlocal.runtime.process import ProcessBackend, ProcessRun


def _parameters(func) -> list[str]:
    return list(inspect.signature(func).parameters)


@pytest.mark.parametrize("backend", [ProcessBackend, DockerBackend])
def test_backends_offer_the_backend_protocol(backend):
    assert backend.name in ("process", "docker")
    for method in ("prepare", "start_training", "start_serving"):
        assert _parameters(getattr(backend, method)) == _parameters(getattr(Backend, method)), method


@pytest.mark.parametrize("run", [ProcessRun, ContainerRun])
def test_runs_offer_the_run_protocol(run):
    assert Run in run.__mro__ and isinstance(run.pid, property)  # terminate and kill come from Run
    for method in ("poll", "wait", "signal", "finish", "terminate", "kill"):
        assert _parameters(getattr(run, method)) == _parameters(getattr(Run, method)), method


def test_a_process_run_stops_on_terminate_and_streams_its_lines():
    lines = []
    code = "import sys, time; print('up', flush=True); time.sleep(60)"
    run = ProcessRun("algo-1", [sys.executable, "-c", code], {}, lambda name, line: lines.append((name, line)))
    try:
        assert run.pid > 0 and run.poll() is None
        for _ in range(100):  # wait for the first line, so the process is surely running
            if lines:
                break
            run.wait(0.05)
        run.terminate()  # Run's SIGTERM, to the whole process group
        assert run.wait(10) == -signal.SIGTERM
    finally:
        run.finish()
    assert lines == [("algo-1", "up")]
