"""A reader thread that iterates a source a few items ahead of its consumer, so parsing overlaps the math."""
from __future__ import annotations

from typing import Iterable, Iterator

from smlocal.data.readahead import read_ahead

DEFAULT_DEPTH = 4  # items parsed ahead: enough to hide a slow batch, few enough to bound memory


class Prefetch:
    """Iterate ``source`` on a reader thread (``data.readahead``), ``depth`` items ahead, so parsing
    overlaps the math. The reader's exception is re-raised in the consumer at the point the item would
    have arrived. ``close`` (or leaving the ``with``) stops the reader, which never blocks forever on a
    full queue.
    """

    def __init__(self, source: Iterable, depth: int = DEFAULT_DEPTH):
        self._items = read_ahead(lambda: iter(source), max(1, depth), name="smlocal-prefetch")

    def __iter__(self) -> Iterator:
        return self._items

    def close(self) -> None:
        self._items.close()

    def __enter__(self) -> "Prefetch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
