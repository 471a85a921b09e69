"""The prefetch reader thread: items in order and ahead, reader errors in the consumer, a clean close."""
from __future__ import annotations

import threading
import time

import pytest

from smlocal.algorithms.common.prefetch import Prefetch
from smlocal.errors import CustomerError


def test_items_arrive_in_order_and_the_reader_runs_ahead():
    produced = []

    def source():
        for i in range(10):
            produced.append(i)
            yield i

    with Prefetch(source(), depth=3) as items:
        it = iter(items)
        assert next(it) == 0
        time.sleep(0.2)
        assert len(produced) >= 3  # parsed ahead while the consumer was busy
        assert list(it) == list(range(1, 10))


def test_reader_errors_surface_in_the_consumer_after_the_good_items():
    def source():
        yield 1
        yield 2
        raise CustomerError("bad record")

    got = []
    with pytest.raises(CustomerError, match="bad record"):
        with Prefetch(source()) as items:
            for item in items:
                got.append(item)
    assert got == [1, 2]


def test_close_stops_a_reader_blocked_on_a_full_queue():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    prefetch = Prefetch(endless(), depth=2)
    assert next(iter(prefetch)) == 0
    assert any(t.name == "smlocal-prefetch" for t in threading.enumerate())
    prefetch.close()
    assert not any(t.name == "smlocal-prefetch" for t in threading.enumerate())
