"""Docker backend: one container per host through the docker SDK (no Compose).

Containers use the host network, each host's /opt/ml tree bind-mounted and channel data bind-mounted
read-only; logs are streamed with a host prefix. Containers run as the calling user so every file they
write stays removable."""
from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path
from typing import Mapping, Sequence

from smlocal.environment import Paths
from smlocal.errors import CustomerError, PlatformError, killed_by
from smlocal.runtime.backends import LineSink, Run
from smlocal.runtime.layout import materialize
from smlocal.runtime.plan import CONTAINER, HostPlan

LABEL = "smlocal"


def client(timeout: int = 5):
    """A docker client for DOCKER_HOST / the default socket, or None when no engine answers."""
    try:
        import docker

        cli = docker.from_env(timeout=timeout)
        cli.ping()
        return cli
    except Exception:  # noqa: BLE001 - any failure means "no usable engine"
        return None


def engine_available() -> bool:
    cli = client(timeout=3)
    if cli is None:
        return False
    cli.close()
    return True


def _name(*parts: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", "-".join(parts))[:120]


class ContainerRun(Run):
    """A running container, seen as a ``Run`` like ``process.ProcessRun``."""

    def __init__(self, name: str, container, on_line: LineSink):
        self.name = name
        self.container = container
        self._exit: int | None = None
        self._reader = threading.Thread(target=self._pump, args=(on_line,), daemon=True, name=f"log-{name}")
        self._reader.start()

    def _pump(self, on_line: LineSink) -> None:
        pending = b""
        try:
            for chunk in self.container.logs(stream=True, follow=True, stdout=True, stderr=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    on_line(self.name, line.decode("utf-8", "replace").rstrip("\r"))
        except Exception:  # noqa: BLE001 - the container went away: its logs end here
            pass
        if pending:
            on_line(self.name, pending.decode("utf-8", "replace"))

    def poll(self) -> int | None:
        if self._exit is None:
            try:
                self.container.reload()
            except Exception:  # noqa: BLE001 - removed under us
                self._exit = killed_by(signal.SIGKILL)
                return self._exit
            if self.container.status in ("exited", "dead"):
                self._exit = int(self.container.attrs["State"]["ExitCode"])
        return self._exit

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            result = self.container.wait(timeout=timeout)
            self._exit = int(result.get("StatusCode", 1))
        except Exception:  # noqa: BLE001 - timeout (requests' ReadTimeout / ConnectionError)
            return self.poll()
        return self._exit

    def signal(self, sig: int) -> None:
        try:
            self.container.kill(signal=int(sig))
        except Exception:  # noqa: BLE001 - already stopped
            pass

    def finish(self, timeout: float = 5.0) -> None:
        self._reader.join(timeout)
        try:
            self.container.remove(force=True)
        except Exception:  # noqa: BLE001
            pass

    @property
    def pid(self) -> int | None:
        return None


class DockerBackend:
    """The ``Backend`` that runs each host, or the server, as a container of ``image``."""

    name = "docker"

    def __init__(self, image: str, docker_client=None, run_as_user: bool = True):
        if not image:
            raise CustomerError("The docker backend needs an image: pass --image (e.g. smlocal:latest).")
        self.image = image
        self.client = docker_client or client()
        if self.client is None:
            raise PlatformError("No Docker engine answers (DOCKER_HOST / the default socket). Start Docker or "
                                "use --backend process.")
        self.user = f"{os.getuid()}:{os.getgid()}" if run_as_user and hasattr(os, "getuid") else None
        self._check_image()

    def _check_image(self) -> None:
        import docker.errors

        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound:
            try:
                self.client.images.pull(self.image)
            except Exception as exc:  # noqa: BLE001
                raise CustomerError(f"Docker image '{self.image}' is not present and could not be pulled ({exc}). "
                                    "Build it (docker build -t NAME .) or pass the right --image.") from None

    def prepare(self, host: HostPlan) -> None:
        materialize(host, mounts_as="mountpoint")

    def _run(self, name: str, command: list[str], env: Mapping[str, str], binds: list[tuple[str, str, bool]],
             entrypoint: Sequence[str] | None = None):
        from docker.types import Mount

        mounts = [Mount(target=target, source=str(Path(source).resolve()), type="bind", read_only=ro)
                  for source, target, ro in binds]
        kwargs = dict(command=command, detach=True, network_mode="host", environment=dict(env),
                      mounts=mounts, name=name, labels={LABEL: "1"}, init=True)
        if entrypoint:
            kwargs["entrypoint"] = list(entrypoint)
            kwargs["command"] = None
        if self.user:
            kwargs["user"] = self.user
        try:
            return self.client.containers.run(self.image, **kwargs)
        except Exception as exc:  # noqa: BLE001 - surface the engine's reason
            raise PlatformError(f"Docker could not start {name} from image '{self.image}': {exc}") from None

    def start_training(self, host: HostPlan, on_line: LineSink, job_name: str = "job",
                       entrypoint: Sequence[str] | None = None) -> ContainerRun:
        binds = [(host.root, str(CONTAINER.base), False)]
        binds += [(m.source, m.container_path, m.read_only) for m in host.mounts]
        container = self._run(_name("smlocal", job_name, host.host), ["train"], host.env, binds, entrypoint)
        return ContainerRun(host.host, container, on_line)

    def start_serving(self, root: Path, port: int, env: Mapping[str, str], on_line: LineSink,
                      name: str = "endpoint") -> ContainerRun:
        binds = [(str(Paths(Path(root)).model_dir), str(CONTAINER.model_dir), True)]
        full = {**env, "SAGEMAKER_BIND_TO_PORT": str(port)}
        container = self._run(_name("smlocal", name, str(os.getpid())), ["serve"], full, binds)
        return ContainerRun(name, container, on_line)
