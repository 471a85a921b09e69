"""The CSV channel's read-ahead thread: items in order, the producer's error after the items before it,
and a producer left early stops and closes its source."""
import threading

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
