"""Where a multi-host job's KVStore scheduler is and how long to wait: ``ClusterSettings``.

They come from resourceconfig.json's hosts and the environment. ``DMLC_PS_ROOT_URI``/``DMLC_PS_ROOT_PORT``
default to the first host's address and port 9000, as on SageMaker; ``DMLC_NUM_SERVER=1`` and
``DMLC_NUM_WORKER`` = the number of hosts (the variables ps-lite reads: MXNet's "Distributed Training in
MXNet", "Manually launching jobs"). A loopback root (local runs) pins ``DMLC_NODE_HOST=127.0.0.1``/
``DMLC_INTERFACE=lo``. The liveness monitor listens on ``SMLOCAL_KV_MONITOR_PORT`` (default root port + 1),
and every wait is bounded by ``SMLOCAL_KV_TIMEOUT`` seconds (default 30).
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from smlocal.algorithms.cluster.single import HostRank
from smlocal.errors import CustomerError, PlatformError

DEFAULT_ROOT_PORT = 9000  # SageMaker's DMLC_PS_ROOT_PORT
DEFAULT_TIMEOUT_S = 30.0
TIMEOUT_ENV = "SMLOCAL_KV_TIMEOUT"
MONITOR_PORT_ENV = "SMLOCAL_KV_MONITOR_PORT"


@dataclass(frozen=True)
class ClusterSettings(HostRank):
    hosts: tuple[str, ...]
    current_host: str
    root_uri: str  # the scheduler's address
    root_port: int
    monitor_port: int
    timeout: float
    interface: str | None  # DMLC_INTERFACE for non-loopback runs

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
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value <= 0 or (kind is int and value > 65535):
        what = "a port number (1-65535)" if kind is int else "a positive number of seconds"
        raise CustomerError(f"The environment variable {name}='{raw}' is not valid: it must be {what}.")
    return value


def cluster_settings(hosts: tuple[str, ...], current_host: str, environ: Mapping[str, str],
                     resolve: Callable[[str], str] = socket.gethostbyname,
                     interface: str | None = None) -> ClusterSettings:
    """Where the scheduler is and how long to wait, from resourceconfig.json's hosts and the environment."""
    if current_host not in hosts:
        raise CustomerError(f"resourceconfig.json: current_host '{current_host}' is not one of its hosts "
                            f"{list(hosts)}.")
    uri = environ.get("DMLC_PS_ROOT_URI", "").strip() or hosts[0]
    try:
        ipaddress.ip_address(uri)
    except ValueError:  # a host name: ps-lite binds and connects to addresses
        try:
            uri = resolve(uri)
        except OSError as exc:
            raise PlatformError(f"Cannot resolve the first host '{uri}' ({exc}); set DMLC_PS_ROOT_URI to its "
                                "address.") from None
    port = _number(environ, "DMLC_PS_ROOT_PORT", DEFAULT_ROOT_PORT, int)
    monitor = _number(environ, MONITOR_PORT_ENV, port + 1 if port < 65535 else port - 1, int)
    if monitor == port:
        raise CustomerError(f"{MONITOR_PORT_ENV}={monitor} is the KVStore's DMLC_PS_ROOT_PORT: choose another port.")
    timeout = _number(environ, TIMEOUT_ENV, DEFAULT_TIMEOUT_S)
    return ClusterSettings(tuple(hosts), current_host, uri, port, monitor, timeout,
                           environ.get("DMLC_INTERFACE") or interface)
