"""The execution backends' contract: what a backend starts (a ``Run``) and what it offers (``Backend``).

``process.ProcessBackend`` runs the container's ``train`` / ``serve`` as local processes,
``docker.DockerBackend`` as containers; the job runner (``jobs``), ``endpoint`` and ``transform`` see
only these two protocols.
"""
from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Protocol, Sequence

if TYPE_CHECKING:
    from smlocal.runtime.plan import HostPlan

LineSink = Callable[[str, str], None]  # (host or endpoint name, line without newline)


class Run(Protocol):
    """One running host or server, whichever backend started it, with its log lines going to a sink.

    ``signal`` is the backend's own; stopping is SIGTERM, then SIGKILL, as SageMaker does (a backend
    subclassing ``Run`` inherits ``terminate`` and ``kill``).
    """

    name: str

    @property
    def pid(self) -> int | None:
        """The local process id, or None where there is none to give (a container)."""

    def poll(self) -> int | None:
        """The exit code once it has exited, else None."""

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, waiting up to ``timeout`` seconds; None if still running then."""

    def signal(self, sig: int) -> None:
        """Send ``sig``; a run that has already ended ignores it."""

    def finish(self, timeout: float = 5.0) -> None:
        """After exit: release what is left (group members, the container) and drain the last log lines."""

    def terminate(self) -> None:
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)


class Backend(Protocol):
    """Where a job's hosts and an endpoint's server run."""

    name: str  # "process" | "docker", as the job record's Backend says

    def prepare(self, host: HostPlan) -> None:
        """Lay out the host's /opt/ml tree before it starts."""

    def start_training(self, host: HostPlan, on_line: LineSink, job_name: str = "job",
                       entrypoint: Sequence[str] | None = None) -> Run:
        """Start the host's ``train``; ``entrypoint``: the job's ContainerEntrypoint + ContainerArguments."""

    def start_serving(self, root: Path, port: int, env: Mapping[str, str], on_line: LineSink,
                      name: str = "endpoint") -> Run:
        """Start ``serve`` on ``port`` for the model extracted under ``root/model``."""
