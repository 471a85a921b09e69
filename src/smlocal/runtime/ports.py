"""Free loopback ports: for endpoints, and the scheduler and monitor ports of a multi-host job."""
from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port the OS has just found free on loopback (free until someone else binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def free_port_pair(attempts: int = 50) -> int:
    """A free loopback port p with p + 1 free too: the KVStore scheduler's and the host monitor's ports
    of a multi-host job (ps-lite's other nodes take OS-assigned ports, so concurrent jobs never clash)."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as first:
            first.bind((LOOPBACK, 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as second:
                try:
                    second.bind((LOOPBACK, port + 1))
                except OSError:
                    continue
                return port
    return free_port()


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """Whether ``port`` is taken on ``host`` or on every interface (a server bound to 0.0.0.0)."""
    for addr in (host, "0.0.0.0"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((addr, port))
            except OSError:
                return True
    return False
