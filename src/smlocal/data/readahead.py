"""Run an iterator one step ahead in a thread, so reading and parsing overlap the consumer's work;
``map_ahead`` runs a function over items on several threads ahead of the consumer, in order.

A channel's producer (read a chunk, decode or parse it, check it: numpy and polars release the GIL) runs
here while the training loop takes the previous rows: both cores stay busy. At most ``depth`` items wait, so
memory stays bounded. An exception of the producer is raised in the consumer at the point where the
items before it have been taken, so errors (and their messages) come in the order they would without
the thread.
"""
from __future__ import annotations

import collections
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
_DONE = object()
_POLL = 0.1  # seconds a blocked put waits before checking whether the consumer left
_JOIN_S = 5  # how long a consumer that leaves waits for the producer's current item


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def read_ahead(make: Callable[[], Iterator[Item]], depth: int = 2, name: str = "smlocal-read-ahead") -> Iterator[Item]:
    """The items of ``make()``, produced in a daemon thread up to ``depth`` ahead of the caller."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    thread = threading.Thread(target=_produce, args=(make, items, stop), name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()  # the consumer left (done, failed or closed early): let a blocked producer end
        _drain(items)
        thread.join(timeout=_JOIN_S)


def _produce(make: Callable[[], Iterator], items: queue.Queue, stop: threading.Event) -> None:
    source = None
    try:
        source = make()
        for item in source:
            if not _put(items, item, stop):
                return
        _put(items, _DONE, stop)
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
        _put(items, _Failure(exc), stop)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()  # closes the files the producer opened, in the thread that opened them


def _put(items: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            items.put(item, timeout=_POLL)
            return True
        except queue.Full:
            continue
    return False


def _drain(items: queue.Queue) -> None:
    try:
        while True:
            items.get_nowait()
    except queue.Empty:
        pass


def map_ahead(fn: Callable[[Item], Result], items: Iterable[Item], in_flight: int,
              name: str = "smlocal-map-ahead") -> Iterator[tuple[Item, Result]]:
    """``(item, fn(item))`` in the order of ``items``, with ``fn`` running on up to ``in_flight`` items at once
    on a thread pool while the caller takes earlier results (``items`` is drawn in the caller's thread).
    An exception of ``fn`` is raised where its result would come; a caller that leaves cancels what has
    not started and waits for what has."""
    pool = ThreadPoolExecutor(max(in_flight, 1), thread_name_prefix=name)
    pending: collections.deque = collections.deque()
    try:
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) >= in_flight:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
