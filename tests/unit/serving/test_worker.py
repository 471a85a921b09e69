"""The slow lane's test of a new connection: whole requests are answered by the worker, the rest on threads."""
from __future__ import annotations

import socket
import time

import pytest

from smlocal.serving.worker import PEEK_BYTES, arrived_in_full, request_in_full

HEAD = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"


@pytest.mark.parametrize("received, whole", [
    (b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n", True),
    (HEAD + b"Content-Length: 5\r\n\r\n1,2,3", True),
    (HEAD + b"content-length:5\r\n\r\n1,2,3", True),  # names are case-insensitive, the space optional
    (HEAD + b"Content-Length: 5\r\n\r\n1,2,3GET /next", True),  # more than the request: it is in full
    (HEAD + b"Content-Length: 5\r\n\r\n1,2,", False),  # a byte short of its Content-Length
    (HEAD + b"Content-Len", False),  # headers still on the way
    (HEAD + b"Content-Length: 5\r\n", False),  # no blank line yet
    (b"", False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\n1,2,3\r\n0\r\n\r\n", False),  # chunked: on a thread
    (HEAD + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n1,2,3", False),  # gunicorn's to refuse, on a thread
    (HEAD + b"X-Content-Length: 0\r\nContent-Length: 5\r\n\r\n1,2", False),  # only the real header counts
])
def test_request_in_full(received, whole):
    assert request_in_full(received) is whole


@pytest.fixture()
def pair():
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def test_a_whole_request_is_seen_and_nothing_is_consumed(pair):
    server, client = pair
    request = HEAD + b"Content-Length: 5\r\n\r\n1,2,3"
    client.sendall(request)
    assert arrived_in_full(server)
    assert server.recv(4096) == request  # the peek left every byte for gunicorn's parser


def test_partial_requests_silent_clients_and_large_bodies_take_the_slow_lane(pair):
    server, client = pair
    started = time.monotonic()
    assert not arrived_in_full(server, wait_ms=50)  # nothing sent: it waits only so long
    assert 0.04 < time.monotonic() - started < 1.0
    client.sendall(HEAD + b"Content-Length: 1000\r\n\r\n1,")
    assert not arrived_in_full(server)
    server.recv(4096)
    body = b"1," * (PEEK_BYTES // 2)  # a whole request, but over what one peek looks at
    client.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert not arrived_in_full(server)


def test_a_closed_connection_is_answered_at_once(pair):
    server, client = pair
    client.close()
    assert arrived_in_full(server)  # gunicorn's parser sees the end and lets it go


def test_a_silent_client_waits_no_longer_than_the_next_connection(pair):
    server, _client = pair
    listener = socket.create_server(("127.0.0.1", 0))
    waiting = socket.create_connection(listener.getsockname())  # another connection in the accept queue
    try:
        started = time.monotonic()
        assert not arrived_in_full(server, listener, wait_ms=5000)
        assert time.monotonic() - started < 1.0  # the worker goes on to the next connection
    finally:
        waiting.close()
        listener.close()
