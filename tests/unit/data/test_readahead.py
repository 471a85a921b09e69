"""A channel's read-ahead thread: items in order and ahead of the consumer, the producer's error after the
items before it, and a producer left early stops, closes its source and its thread ends."""
import threading
import time

import pytest

from smlocal.data.readahead import read_ahead


def test_items_come_in_order_then_the_producers_error():
    def produce():
        yield from range(5)
        raise ValueError("line 6 is bad")

    got = []
    with pytest.raises(ValueError, match="line 6 is bad"):
        for item in read_ahead(produce, depth=1):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_a_consumer_that_leaves_early_stops_the_producer_and_closes_its_source():
    closed = threading.Event()

    def produce():
        try:
            for i in range(10**9):
                yield i
        finally:
            closed.set()

    items = read_ahead(produce, depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert closed.wait(5)


def test_the_producer_runs_ahead_while_the_consumer_is_busy():
    produced = []

    def produce():
        for i in range(10):
            produced.append(i)
            yield i

    items = read_ahead(produce, depth=3)
    assert next(items) == 0
    time.sleep(0.2)
    assert len(produced) >= 3  # parsed ahead while the consumer was busy
    assert list(items) == list(range(1, 10))


def test_close_ends_a_producer_blocked_on_a_full_queue_and_its_thread():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    items = read_ahead(endless, depth=2, name="smlocal-test-read-ahead")
    assert next(items) == 0
    assert any(t.name == "smlocal-test-read-ahead" for t in threading.enumerate())
    items.close()
    assert not any(t.name == "smlocal-test-read-ahead" for t in threading.enumerate())
