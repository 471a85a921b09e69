"""gunicorn's sync worker with a slow lane: what ``serve`` runs when no nginx is in front.

A sync worker answers one request at a time, taken in arrival order from the socket every worker shares: the
least CPU per request and the shortest tail (measured: 1.2-1.4x gunicorn's threaded worker's req/s, half its
p99). Alone, though, one client that sends half a request would hold it until the read timeout. So before
answering, this worker looks at what a new connection has sent (a peek: nothing is consumed). A whole request
is answered at once, as the sync worker does; anything else (headers or body still on the way, a chunked body,
one over the peek's size, a client silent for a few milliseconds or until the next connection comes) goes to
a small thread pool, where waiting on the client holds one thread (until the read timeout at most) and never
the worker.
"""
from __future__ import annotations

import re
import select
import socket
from concurrent.futures import ThreadPoolExecutor

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

# as gunicorn's worker_class setting names it; not "...SyncWorker": gunicorn swaps a class of that name for its
# threaded worker when threads > 1
WORKER_CLASS = "smlocal.serving.worker.SlowLaneWorker"
PEEK_BYTES = 64 * 1024  # a larger request takes the slow lane; its own transfer outweighs the hand-off
FIRST_BYTES_WAIT_MS = 10  # how long the worker waits for a new connection's first bytes before passing it on

_HEAD_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*([0-9]+)[ \t]*(?=\r\n)", re.IGNORECASE)
_TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding[ \t]*:", re.IGNORECASE)


def request_in_full(received: bytes) -> bool:
    """Do these bytes hold a whole HTTP/1.x request: the head, and the body its Content-Length declares?

    Only a guess at speed: gunicorn's parser still reads and checks the request either way. A chunked body,
    or more than one Content-Length (gunicorn refuses it), counts as not in full.
    """
    end = received.find(_HEAD_END)
    if end < 0:
        return False
    head = received[:end + 2]  # the CRLF that ends the last header line
    if _TRANSFER_ENCODING.search(head):
        return False
    lengths = _CONTENT_LENGTH.findall(head)
    if len(lengths) > 1:
        return False
    body = int(lengths[0]) if lengths else 0
    return end + len(_HEAD_END) + body <= len(received)


def arrived_in_full(client: socket.socket, listener=None, wait_ms: int = FIRST_BYTES_WAIT_MS) -> bool:
    """Has ``client`` sent a whole request (or closed)? Reads nothing off the socket. It waits up to ``wait_ms``
    for the first bytes, and no longer than until ``listener`` has another connection waiting."""
    try:  # most clients have sent their request by the time it is accepted: no poll needed then
        return _whole(client.recv(PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        pass
    except OSError:
        return True  # reset: the sync path fails fast and logs it as gunicorn does
    poller = select.poll()  # not select.select: a descriptor may be over 1023
    poller.register(client, select.POLLIN)
    if listener is not None:
        poller.register(listener, select.POLLIN)
    if client.fileno() not in dict(poller.poll(wait_ms)):
        return False
    try:
        return _whole(client.recv(PEEK_BYTES, socket.MSG_PEEK))
    except OSError:
        return True


def _whole(received: bytes) -> bool:
    return not received or request_in_full(received)  # b"": the client closed; the sync path sees it at once


class SlowLaneWorker(SyncWorker):
    """``SyncWorker`` whose connections without a whole request yet are answered on a thread pool."""

    _slow_lane: ThreadPoolExecutor

    def run(self) -> None:
        self._slow_lane = ThreadPoolExecutor(max_workers=self.cfg.threads, thread_name_prefix="slow-client")
        try:
            super().run()
        finally:  # a graceful stop: the slow lane's requests finish too (each bounded by the read timeout)
            self._slow_lane.shutdown(wait=True)

    def accept(self, listener) -> None:
        client, addr = listener.accept()
        client.setblocking(True)
        util.close_on_exec(client)
        if arrived_in_full(client, listener):
            self.handle(listener, client, addr)
        else:
            self._slow_lane.submit(self.handle, listener, client, addr)
