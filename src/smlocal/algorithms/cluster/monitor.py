"""Liveness of a multi-host training job, beside the KVStore: who joined, who is alive, how far each is.

MXNet's KVStore (ps-lite) waits forever for a peer that died or never came. This monitor is a plain TCP
side channel that notices instead. The ``Coordinator``, a thread of the first host's training process,
accepts one connection per host (the first host connects to itself too, so every host runs the same
client code). Each ``MonitorClient`` says hello, then sends a heartbeat every ``HEARTBEAT_S`` seconds
with the number of collective operations it has entered; the coordinator answers every client with
everyone's count. The coordinator tells every host still connected about:

- hosts that have not connected ``timeout`` seconds after it started (``not_joined``);
- a connection that ends without a goodbye: the process was killed, crashed or ran out of memory
  (``lost``, noticed at once: the kernel closes a dead process's sockets);
- a host silent for ``timeout`` seconds (``lost``);
- a host that reports its own failure (``failed``, relayed with the host's failure text).

After relaying a failure the coordinator half-closes every connection and drains them, so the last
message is read before any socket is torn down. Messages are JSON lines; no MXNet, no numpy.
"""
from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

HEARTBEAT_S = 0.5
CONNECT_RETRY_S = 0.2
DRAIN_S = 2.0  # how long a failing coordinator keeps reading so its last message is delivered


@dataclass(frozen=True)
class Failure:
    """What went wrong, about which host. ``message``: for ``failed`` the host's own failure text."""

    kind: str  # "failed" | "lost" | "not_joined"
    host: str
    message: str


def _send(sock: socket.socket, message: dict) -> bool:
    try:
        sock.sendall((json.dumps(message) + "\n").encode("utf-8"))
        return True
    except OSError:
        return False


def _half_close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class _Lines:
    """Splits a byte stream into JSON objects (one per line); anything else is ignored."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[dict]:
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        out = []
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                out.append(message)
        return out


@dataclass
class _Peer:
    lines: _Lines = field(default_factory=_Lines)
    host: str | None = None
    last_seen: float = 0.0


class Coordinator:
    """Runs on the first host: tracks joins, heartbeats and goodbyes; relays the first failure to all."""

    def __init__(self, hosts: tuple[str, ...], port: int, timeout: float, bind: str = "",
                 clock: Callable[[], float] = time.monotonic):
        self.hosts = tuple(hosts)
        self.timeout = float(timeout)
        self._clock = clock
        self._server = socket.create_server((bind, port))  # SO_REUSEADDR: a restarted job rebinds at once
        self._selector = selectors.DefaultSelector()
        self._peers: dict[socket.socket, _Peer] = {}
        self._joined: dict[str, socket.socket] = {}
        self._seen: set[str] = set()
        self._byes: set[str] = set()
        self.ops: dict[str, int] = {}
        self.failure: Failure | None = None
        self._stop = threading.Event()
        self._started = 0.0
        self._drain_until = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True, name="smlocal-coordinator")

    @property
    def port(self) -> int:
        return int(self._server.getsockname()[1])

    def start(self) -> "Coordinator":
        self._started = self._clock()
        self._selector.register(self._server, selectors.EVENT_READ)
        self._thread.start()
        return self

    def wait_done(self, timeout: float) -> None:
        """After a failure: wait until the relay is delivered and the connections are drained."""
        self._thread.join(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Clean end of the job: wait (up to ``timeout``) for every host's goodbye, then stop."""
        deadline = self._clock() + timeout
        while self._thread.is_alive() and self._clock() < deadline and self._peers:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ loop (coordinator thread)
    def _run(self) -> None:
        next_beat = 0.0
        try:
            while not self._stop.is_set():
                for key, _ in self._selector.select(timeout=0.1):
                    if key.fileobj is self._server:
                        self._accept()
                    else:
                        self._read(key.fileobj)
                now = self._clock()
                if self.failure is not None:
                    if not self._peers or now > self._drain_until:
                        break
                    continue
                if now >= next_beat:
                    next_beat = now + HEARTBEAT_S
                    beat = {"t": "hb", "ops": dict(self.ops)}
                    for sock in list(self._joined.values()):
                        _send(sock, beat)
                self._check(now)
        finally:
            for sock in list(self._peers):
                self._drop(sock)
            self._selector.close()
            self._server.close()

    def _accept(self) -> None:
        try:
            conn, _ = self._server.accept()
        except OSError:
            return
        conn.settimeout(5.0)
        self._peers[conn] = _Peer(last_seen=self._clock())
        self._selector.register(conn, selectors.EVENT_READ)

    def _drop(self, sock: socket.socket) -> _Peer | None:
        peer = self._peers.pop(sock, None)
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()
        if peer is not None and peer.host is not None and self._joined.get(peer.host) is sock:
            del self._joined[peer.host]
        return peer

    def _read(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            peer = self._drop(sock)
            host = peer.host if peer is not None else None
            if host is not None and host not in self._byes:
                self._fail_all(Failure("lost", host, f"lost contact with host {host}: its training process ended "
                                       "before the job finished (killed, crashed or out of memory)."))
            return
        peer = self._peers[sock]
        for message in peer.lines.feed(data):
            self._handle(sock, peer, message)

    def _handle(self, sock: socket.socket, peer: _Peer, message: dict) -> None:
        kind = message.get("t")
        peer.last_seen = self._clock()
        if kind == "hello":
            host = str(message.get("host"))
            if host not in self.hosts or host in self._joined:
                self._drop(sock)  # not one of this job's hosts, or a second connection for one
                return
            peer.host = host
            self._joined[host] = sock
            self._seen.add(host)
            self.ops.setdefault(host, 0)
        elif peer.host is None:
            return
        elif kind == "hb":
            self.ops[peer.host] = int(message.get("op", 0))
        elif kind == "bye":
            self._byes.add(peer.host)
        elif kind == "fail":
            self._byes.add(peer.host)  # its connection will end: that is not news
            self._fail_all(Failure("failed", peer.host, str(message.get("text", ""))), origin=sock)

    def _check(self, now: float) -> None:
        if now - self._started > self.timeout:
            missing = [h for h in self.hosts if h not in self._seen]
            if missing:
                joined = [h for h in self.hosts if h in self._seen]
                self._fail_all(Failure(
                    "not_joined", ", ".join(missing),
                    f"host{'s' if len(missing) > 1 else ''} {', '.join(missing)} did not join the cluster within "
                    f"{self.timeout:g} s (SMLOCAL_KV_TIMEOUT); joined: {', '.join(joined) or 'none'}."))
                return
        for host, sock in list(self._joined.items()):
            peer = self._peers.get(sock)
            if peer is not None and host not in self._byes and now - peer.last_seen > self.timeout:
                self._fail_all(Failure("lost", host, f"lost contact with host {host}: no heartbeat for "
                                                     f"{self.timeout:g} s (SMLOCAL_KV_TIMEOUT)."))
                return

    def _fail_all(self, failure: Failure, origin: socket.socket | None = None) -> None:
        """Tell every connected host (but the one that reported it), once; then half-close and drain."""
        if self.failure is not None:
            return
        self.failure = failure
        message = {"t": "fail", "kind": failure.kind, "host": failure.host, "message": failure.message}
        for sock in list(self._peers):
            if sock is not origin:
                _send(sock, message)
            _half_close(sock)
        self._drain_until = self._clock() + DRAIN_S


class MonitorClient:
    """One host's connection to the coordinator. ``on_failure`` is called (from the reader thread) once."""

    def __init__(self, host: str, address: str, port: int, timeout: float, first_host: str,
                 on_failure: Callable[[Failure], None], clock: Callable[[], float] = time.monotonic):
        self.host, self.address, self.port = host, address, int(port)
        self.timeout = float(timeout)
        self.first_host = first_host
        self._on_failure = on_failure
        self._clock = clock
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()  # one writer at a time (heartbeat thread, main thread)
        self._eof = threading.Event()
        self._last_heard = clock()
        self._peer_ops: dict[str, int] = {}
        self.closing = False
        self._notified = False

    def connect(self) -> None:
        """Connect (retrying until ``timeout``) and say hello; raises ``ConnectionError`` if unreachable."""
        deadline = self._clock() + self.timeout
        while True:
            try:
                sock = socket.create_connection((self.address, self.port), timeout=1.0)
                break
            except OSError:
                if self._clock() > deadline:
                    raise ConnectionError(
                        f"could not reach the first host {self.first_host} at {self.address}:{self.port} within "
                        f"{self.timeout:g} s (SMLOCAL_KV_TIMEOUT): it did not start, or the hosts cannot reach "
                        "each other on that port.") from None
                time.sleep(CONNECT_RETRY_S)
        sock.settimeout(None)
        self._sock = sock
        self._last_heard = self._clock()
        self._write({"t": "hello", "host": self.host})
        threading.Thread(target=self._read, daemon=True, name="smlocal-monitor").start()

    @property
    def peer_ops(self) -> dict[str, int]:
        return dict(self._peer_ops)

    def silent_for(self) -> float:
        return self._clock() - self._last_heard

    def heartbeat(self, ops: int) -> None:
        self._write({"t": "hb", "op": int(ops)})

    def goodbye(self) -> None:
        """The job ended well here: from now on a closed connection is not a failure."""
        self.closing = True
        self._write({"t": "bye"})

    def report_failure(self, text: str, wait: float = DRAIN_S) -> None:
        """Tell the others why this host fails; wait (bounded) until the coordinator has read it."""
        self.closing = True
        if self._sock is None:
            return
        self._write({"t": "fail", "text": text})
        _half_close(self._sock)
        self._eof.wait(wait)

    def close(self) -> None:
        self.closing = True
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass

    def _write(self, message: dict) -> None:
        if self._sock is not None:
            with self._lock:
                _send(self._sock, message)

    def _notify(self, failure: Failure) -> None:
        if not self._notified:
            self._notified = True
            self._on_failure(failure)

    def _read(self) -> None:
        lines = _Lines()
        sock = self._sock
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            for message in lines.feed(data):
                self._last_heard = self._clock()
                if message.get("t") == "hb":
                    self._peer_ops = {str(k): int(v) for k, v in dict(message.get("ops", {})).items()}
                elif message.get("t") == "fail":
                    self._notify(Failure(str(message.get("kind")), str(message.get("host")),
                                         str(message.get("message"))))
        self._eof.set()
        if not self.closing:
            self._notify(Failure("lost", self.first_host, (
                f"lost contact with host {self.first_host}, the first host (it runs the KVStore scheduler and "
                "server): its training process ended before the job finished (killed, crashed or out of memory).")))
