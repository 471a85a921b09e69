"""Where a multi-host job's KVStore scheduler is and how long to wait: ``ClusterSettings``.

They come from the job's hosts (resourceconfig.json, or ``discovery`` on other engines) and the
environment. ``DMLC_PS_ROOT_URI``/``DMLC_PS_ROOT_PORT`` default to the first host's address (as the engine
gives it) and port 9000, as on SageMaker; ``DMLC_NUM_SERVER=1`` and
``DMLC_NUM_WORKER`` = the number of hosts (the variables ps-lite reads: MXNet's "Distributed Training in
MXNet", "Manually launching jobs"). A loopback root (local runs) pins ``DMLC_NODE_HOST=127.0.0.1``/
``DMLC_INTERFACE=lo``. The liveness monitor listens on ``SMLOCAL_KV_MONITOR_PORT`` (default root port + 1),
and every wait is bounded by ``SMLOCAL_KV_TIMEOUT`` seconds (default 30).
"""
from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from smlocal.algorithms.cluster.single import HostRank
from smlocal.environment import positive_number
from smlocal.errors import CustomerError, PlatformError

DEFAULT_ROOT_PORT = 9000  # SageMaker's DMLC_PS_ROOT_PORT
DEFAULT_TIMEOUT_S = 30.0
TIMEOUT_ENV = "SMLOCAL_KV_TIMEOUT"
MONITOR_PORT_ENV = "SMLOCAL_KV_MONITOR_PORT"
RESOLVE_RETRY_S = 0.5


@dataclass(frozen=True)
class ClusterSettings(HostRank):
    hosts: tuple[str, ...]
    current_host: str
    root_uri: str  # the scheduler's address
    root_port: int
    monitor_port: int
    timeout: float
    interface: str | None  # DMLC_INTERFACE for non-loopback runs
    hint: str = ""  # what to check, on this host's engine, when the first host cannot be reached

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.root_uri).is_loopback

    def dmlc_env(self, role: str) -> dict[str, str]:
        """The ``DMLC_*`` variables of one KVStore role on this host."""
        env = {"DMLC_ROLE": role, "DMLC_PS_ROOT_URI": self.root_uri, "DMLC_PS_ROOT_PORT": str(self.root_port),
               "DMLC_NUM_SERVER": "1", "DMLC_NUM_WORKER": str(self.size)}
        if self.loopback:
            env.update(DMLC_NODE_HOST="127.0.0.1", DMLC_INTERFACE="lo")
        elif self.interface:
            env["DMLC_INTERFACE"] = self.interface
        return env


def _number(environ: Mapping[str, str], name: str, default: float, kind: type = float) -> Any:
    if kind is int:
        return positive_number(environ, name, default, kind=int, maximum=65535, what="a port number (1-65535)")
    return positive_number(environ, name, default, what="a positive number of seconds")


def _resolve(uri: str, resolve: Callable[[str], str], wait: float, hint: str) -> str:
    """``uri`` as an address; a host name is looked up, again and again for ``wait`` seconds (an engine's DNS
    record of the main node may appear only once that node runs)."""
    try:
        ipaddress.ip_address(uri)
        return uri
    except ValueError:  # a host name: ps-lite binds and connects to addresses
        pass
    deadline = time.monotonic() + wait
    while True:
        try:
            return resolve(uri)
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise PlatformError(f"Cannot resolve the first host '{uri}' ({exc}); set DMLC_PS_ROOT_URI to its "
                                    f"address.{hint}") from None
        time.sleep(RESOLVE_RETRY_S)


def cluster_settings(hosts: tuple[str, ...], current_host: str, environ: Mapping[str, str],
                     resolve: Callable[[str], str] = socket.gethostbyname,
                     interface: str | None = None, root: str | None = None, hint: str = "") -> ClusterSettings:
    """Where the scheduler is and how long to wait, from the hosts and the environment.

    ``root``: the first host's address or DNS name as the engine gives it (``discovery``), looked up until
    the timeout; default: the first host's name, looked up once. ``hint`` (with ``{port}`` and
    ``{monitor_port}``) is added to the messages of a first host that cannot be reached."""
    if current_host not in hosts:
        raise CustomerError(f"resourceconfig.json: current_host '{current_host}' is not one of its hosts "
                            f"{list(hosts)}.")
    port = _number(environ, "DMLC_PS_ROOT_PORT", DEFAULT_ROOT_PORT, int)
    monitor = _number(environ, MONITOR_PORT_ENV, port + 1 if port < 65535 else port - 1, int)
    if monitor == port:
        raise CustomerError(f"{MONITOR_PORT_ENV}={monitor} is the KVStore's DMLC_PS_ROOT_PORT: choose another port.")
    timeout = _number(environ, TIMEOUT_ENV, DEFAULT_TIMEOUT_S)
    hint = hint.format(port=port, monitor_port=monitor)
    given = environ.get("DMLC_PS_ROOT_URI", "").strip()
    uri = _resolve(given or root or hosts[0], resolve, timeout if root and not given else 0.0, hint)
    return ClusterSettings(tuple(hosts), current_host, uri, port, monitor, timeout,
                           environ.get("DMLC_INTERFACE") or interface, hint)
