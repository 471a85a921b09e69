"""One background thread that runs calls in the order they were submitted, a few of them ahead at most.

A pass's statistics (loss sums, threshold histograms) read what a step has computed and change nothing
it needs, so they can run on the second core while the next step runs on the first: numpy releases the
GIL inside its loops. One thread and submission order keep every sum exactly as a serial pass adds it.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

BACKLOG = 4  # calls queued before ``submit`` waits: bounds the arrays kept alive for the thread


class OrderedWorker:
    def __init__(self, name: str = "ll-stats", backlog: int = BACKLOG):
        self.name, self.backlog = name, backlog
        self._pool: ThreadPoolExecutor | None = None
        self._queued: deque[Future] = deque()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        self._queued.append(self._pool.submit(fn, *args))
        while len(self._queued) > self.backlog:
            self._queued.popleft().result()

    def wait(self) -> None:
        """Return once every submitted call has run; re-raises the first error of one of them."""
        try:
            while self._queued:
                self._queued.popleft().result()
        finally:
            self._queued.clear()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
