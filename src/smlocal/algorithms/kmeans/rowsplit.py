"""A mini-batch's per-row work split over row ranges, run on worker threads beside the caller.

The assignment of dense rows (shift, one product, argmin, row norms) is independent per row, and numpy's
copies, products and reductions release the GIL, so row ranges run in parallel on plain threads. Each
product stays single-threaded (BLAS threads busy-wait for one another, which costs far more than it
gains when the cores are shared); the split is the same for the same batch size, so results repeat.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

MIN_ROWS = 1024  # below this a range is not worth a thread hand-off


class RowSplitter:
    """Runs ``work(start, stop)`` over ``parts`` row ranges of a batch: one inline, the rest on a pool."""

    def __init__(self, parts: int):
        self.parts = max(1, int(parts))
        self._pool = ThreadPoolExecutor(self.parts - 1, thread_name_prefix="smlocal-kmeans") \
            if self.parts > 1 else None

    def ranges(self, n: int, min_rows: int = MIN_ROWS) -> list[tuple[int, int]]:
        parts = max(1, min(self.parts, n // max(1, min_rows)))
        bounds = [n * i // parts for i in range(parts + 1)]
        return list(zip(bounds[:-1], bounds[1:]))

    def run(self, n: int, work: Callable[[int, int], None], min_rows: int = MIN_ROWS) -> None:
        ranges = self.ranges(n, min_rows)
        futures = [self._pool.submit(work, start, stop) for start, stop in ranges[1:]] if self._pool else []
        try:
            work(*ranges[0])
        finally:
            for future in futures:
                future.result()  # re-raises a worker's error here

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> "RowSplitter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
