"""The reader thread that parses batches ahead of the k-means math."""
from __future__ import annotations

import threading
import time

import pytest

from smlocal.algorithms.kmeans.job import _IterStats, _Prefetch
from smlocal.errors import CustomerError


def test_items_arrive_in_order_and_the_reader_runs_ahead():
    produced = []

    def source():
        for i in range(10):
            produced.append(i)
            yield i

    with _Prefetch(source(), depth=3) as items:
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
        with _Prefetch(source()) as items:
            for item in items:
                got.append(item)
    assert got == [1, 2]


def test_close_stops_a_reader_blocked_on_a_full_queue():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    prefetch = _Prefetch(endless(), depth=2)
    assert next(iter(prefetch)) == 0
    prefetch.close()
    assert not prefetch._thread.is_alive()
    assert not any(t.name == "smlocal-prefetch" and t is prefetch._thread for t in threading.enumerate())


def test_iterator_stats_follow_resets():
    stats = _IterStats()
    for rows in (5, 5, 3):
        stats.add(rows)
    stats.reset()
    stats.add(4)
    m = stats.metrics()
    assert m["Total Records Seen"] == 17 and m["Total Batches Seen"] == 4
    assert m["Max Records Seen Between Resets"] == 13 and m["Max Batches Seen Between Resets"] == 3
    assert m["Number of Records Since Last Reset"] == 4 and m["Reset Count"] == 1
