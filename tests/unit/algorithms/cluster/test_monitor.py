"""Tests of the liveness monitor over real loopback sockets: heartbeats, lost and failing hosts, late joiners."""
from __future__ import annotations

import queue
import socket
import time

import pytest

from smlocal.algorithms.cluster.monitor import Coordinator, Failure, MonitorClient

HOSTS = ("algo-1", "algo-2", "algo-3")


class _Host:
    def __init__(self, name: str, port: int, timeout: float = 5.0):
        self.failures: queue.Queue = queue.Queue()
        self.client = MonitorClient(name, "127.0.0.1", port, timeout, HOSTS[0], on_failure=self.failures.put)

    def failure(self, within: float = 5.0) -> Failure:
        return self.failures.get(timeout=within)


@pytest.fixture
def coordinator():
    started = []

    def start(hosts=HOSTS, timeout=5.0):
        c = Coordinator(hosts, 0, timeout, bind="127.0.0.1").start()
        started.append(c)
        return c

    yield start
    for c in started:
        c.close(timeout=0.5)


def _joined(coordinator: Coordinator, *hosts: _Host) -> None:
    for host in hosts:
        host.client.connect()
    deadline = time.monotonic() + 5
    while len(coordinator.ops) < len(hosts):
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_heartbeats_share_every_hosts_progress(coordinator):
    c = coordinator()
    hosts = [_Host(h, c.port) for h in HOSTS]
    _joined(c, *hosts)
    hosts[1].client.heartbeat(7)
    deadline = time.monotonic() + 5
    while hosts[0].client.peer_ops.get("algo-2") != 7:
        assert time.monotonic() < deadline, hosts[0].client.peer_ops
        time.sleep(0.05)
    assert hosts[2].client.silent_for() < 2
    for h in hosts:
        h.client.goodbye()
        h.client.close()
    assert all(h.failures.empty() for h in hosts)


def test_a_host_that_disappears_is_reported_to_the_others_at_once(coordinator):
    c = coordinator()
    hosts = [_Host(h, c.port) for h in HOSTS]
    _joined(c, *hosts)
    started = time.monotonic()
    hosts[1].client._sock.close()  # like a killed process: no goodbye
    for h in (hosts[0], hosts[2]):
        f = h.failure()
        assert (f.kind, f.host) == ("lost", "algo-2") and "lost contact with host algo-2" in f.message
    assert time.monotonic() - started < 2


def test_a_failing_host_s_reason_is_relayed(coordinator):
    c = coordinator()
    hosts = [_Host(h, c.port) for h in HOSTS]
    _joined(c, *hosts)
    hosts[2].client.report_failure("Customer Error: bad data on algo-3", wait=2.0)
    for h in hosts[:2]:
        assert h.failure() == Failure("failed", "algo-3", "Customer Error: bad data on algo-3")
    assert hosts[2].failures.empty()  # it knows why it fails


def test_hosts_that_never_join_are_named_after_the_timeout(coordinator):
    c = coordinator(timeout=0.6)
    first = _Host("algo-1", c.port)
    _joined(c, first)
    f = first.failure(within=5)
    assert f.kind == "not_joined" and f.message.startswith("hosts algo-2, algo-3 did not join the cluster within 0.6 s")


def test_losing_the_first_host_is_reported_by_the_client(coordinator):
    c = coordinator()
    hosts = [_Host(h, c.port) for h in HOSTS[:2]]
    _joined(c, *hosts)
    c._stop.set()  # the coordinator's process is gone: its sockets close without a word
    f = hosts[1].failure()
    assert f.kind == "lost" and f.host == "algo-1" and "the first host" in f.message


def test_an_unreachable_first_host_fails_within_the_timeout():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        client = MonitorClient("algo-2", "127.0.0.1", port, 0.5, "algo-1", on_failure=lambda f: None)
        started = time.monotonic()
        with pytest.raises(ConnectionError, match=f"could not reach the first host algo-1 at 127.0.0.1:{port}"):
            client.connect()
        assert time.monotonic() - started < 3
