"""A reader thread that iterates a source a few items ahead of its consumer, so parsing overlaps the math."""
from __future__ import annotations

import queue
import threading
from typing import Any, Iterable, Iterator

DEFAULT_DEPTH = 4  # items parsed ahead: enough to hide a slow batch, few enough to bound memory


class Prefetch:
    """Iterate ``source`` on a reader thread, ``depth`` items ahead, so parsing overlaps the math.

    The reader's exception is re-raised in the consumer at the point the item would have arrived.
    ``close`` stops the reader (it never blocks forever on a full queue).
    """

    _DONE = object()

    def __init__(self, source: Iterable, depth: int = DEFAULT_DEPTH):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iter(source),), daemon=True,
                                        name="smlocal-prefetch")
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Iterator) -> None:
        try:
            for item in source:
                if not self._put((item, None)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            self._put((self._DONE, exc))
            return
        self._put((self._DONE, None))

    def __iter__(self) -> Iterator:
        while True:
            item, exc = self._queue.get()
            if exc is not None:
                raise exc
            if item is self._DONE:
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> "Prefetch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
