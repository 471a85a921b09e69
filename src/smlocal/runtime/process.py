"""Process backend: run the container's ``train`` / ``serve`` as local processes, one per host.

Each host is ``python container/train`` with ``SAGEMAKER_BASE_DIR`` pointing at its own /opt/ml tree.
Processes start in their own session, so a Ctrl-C at the terminal reaches only smlocal, which then
stops them (SIGTERM to the whole process group, SIGKILL after the grace period).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Mapping, Sequence

from smlocal.runtime.backends import LineSink, Run
from smlocal.runtime.layout import materialize
from smlocal.runtime.plan import HostPlan


def repo_container_dir() -> Path | None:
    """``container/`` of a source checkout (src/smlocal/runtime/ -> ../../../container), if present."""
    candidate = Path(__file__).resolve().parents[3] / "container"
    return candidate if (candidate / "train").is_file() else None


def entry_command(kind: str, program: Sequence[str] | None = None) -> list[str]:
    """The command running the container's ``train`` or ``serve`` here.

    ``program``: an explicit executable (any SageMaker-contract program); it gets ``kind`` as its
    argument, like ``docker run IMAGE train``. Otherwise the checkout's ``container/<kind>``, or the
    installed package's entry point when smlocal is installed without a checkout.
    """
    if program:
        return [*program, kind]
    container = repo_container_dir()
    if container is not None and (container / kind).is_file():
        return [sys.executable, str(container / kind), kind]
    func = "main_train" if kind == "train" else "main_serve"
    return [sys.executable, "-c", f"import sys; from smlocal.entrypoints import {func}; {func}()", kind]


class ProcessRun(Run):
    """A running host (or server) process with its output streamed line by line."""

    def __init__(self, name: str, command: list[str], env: Mapping[str, str], on_line: LineSink,
                 cwd: str | None = None):
        self.name = name
        self.popen = subprocess.Popen(
            command, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._pump, args=(on_line,), daemon=True,
                                        name=f"log-{name}")
        self._reader.start()

    def _pump(self, on_line: LineSink) -> None:
        for raw in iter(self.popen.stdout.readline, b""):
            on_line(self.name, raw.decode("utf-8", "replace").rstrip("\r\n"))
        self.popen.stdout.close()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, sig: int) -> None:
        """Signal the whole process group (gunicorn workers, parameter servers...)."""
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def finish(self, timeout: float = 5.0) -> None:
        """After exit: reap any group members left behind and wait for the last log lines."""
        self.kill()
        self._reader.join(timeout)


class ProcessBackend:
    """The ``Backend`` that runs each host, or the server, as a local process group."""

    name = "process"

    def __init__(self, program: Sequence[str] | None = None):
        self.program = list(program) if program else None

    def prepare(self, host: HostPlan) -> None:
        materialize(host, mounts_as="symlink")

    def start_training(self, host: HostPlan, on_line: LineSink, job_name: str = "job",
                       entrypoint: Sequence[str] | None = None) -> ProcessRun:
        """``entrypoint``: the job's ContainerEntrypoint + ContainerArguments, run as given (as Docker does)."""
        env = {**os.environ, **host.env, "SAGEMAKER_BASE_DIR": host.root}
        command = list(entrypoint) if entrypoint else entry_command("train", self.program)
        return ProcessRun(host.host, command, env, on_line, cwd=host.root)

    def start_serving(self, root: Path, port: int, env: Mapping[str, str], on_line: LineSink,
                      name: str = "endpoint") -> ProcessRun:
        full = {**os.environ, "PYTHONUNBUFFERED": "1", **env, "SAGEMAKER_BASE_DIR": str(root),
                "SAGEMAKER_BIND_TO_PORT": str(port)}
        return ProcessRun(name, entry_command("serve", self.program), full, on_line, cwd=str(root))
