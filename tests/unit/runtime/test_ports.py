"""Free loopback ports: a single one, a pair for multi-host jobs, and the in-use check endpoints make."""
from __future__ import annotations

import socket

from smlocal.runtime.ports import LOOPBACK, free_port, free_port_pair, port_in_use


def test_free_ports_can_be_bound():
    port = free_port()
    assert 0 < port < 65536 and not port_in_use(port)
    pair = free_port_pair()
    for p in (pair, pair + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, p))


def test_a_listening_port_is_in_use():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        s.listen()
        assert port_in_use(s.getsockname()[1])
