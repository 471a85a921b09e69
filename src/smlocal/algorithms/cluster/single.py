"""The one-host cluster: every collective operation is local, and the base class of the KVStore cluster.

An algorithm gets a few collective operations -- ``allreduce_sum``, ``allgather``, ``gather_rows``,
``broadcast``, ``barrier`` -- plus ``rank`` (this host's index in resourceconfig.json's ``hosts``, so
``rank == 0`` is the first host), ``size`` and ``close``/``abort``. Every host must call the same
operations in the same order with the same shapes. No MXNet import, no network.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class HostRank:
    """``size`` and ``rank`` (index in resourceconfig.json's ``hosts``) from ``hosts`` and ``current_host``."""

    hosts: tuple[str, ...]
    current_host: str

    @property
    def size(self) -> int:
        return len(self.hosts)

    @property
    def rank(self) -> int:
        return self.hosts.index(self.current_host)


class Cluster(HostRank):
    """The hosts of a training job. This base class is the one-host cluster: every operation is local."""

    store_type = "local"

    def __init__(self, hosts: tuple[str, ...] = ("algo-1",), current_host: str = "algo-1"):
        self.hosts = tuple(hosts)
        self.current_host = current_host

    @property
    def is_first(self) -> bool:
        return self.rank == 0

    def allreduce_sum(self, array: Any) -> np.ndarray:
        """The element-wise sum over hosts. float32 stays float32; other floats come back float64, integers
        and booleans as int64 (exact below 2**53)."""
        return from_wire(np.asarray(array), np.array(array, dtype=wire_dtype(np.asarray(array))))

    def allgather(self, array: Any) -> np.ndarray:
        """Every host's ``array`` (same shape on all), stacked in host order: (size, *shape)."""
        return self.allreduce_sum(np.asarray(array)[None])

    def gather_rows(self, array: Any) -> np.ndarray:
        """Every host's rows (lengths may differ, trailing shape may not), concatenated in host order."""
        return np.array(array)

    def broadcast(self, array: Any) -> np.ndarray:
        """The first host's ``array``; the others pass an array of the same shape (its values are ignored)."""
        return np.array(array)

    def barrier(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self, exc: BaseException) -> None:
        """A failing host: nothing to tell on one host (the entry point reports the error)."""

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:
            self.abort(exc)  # several hosts: never returns
        else:
            self.close()


def wire_dtype(a: np.ndarray) -> np.dtype:
    """The dtype an array is summed in: float32 stays float32, everything else is summed as float64."""
    return np.dtype(np.float32) if a.dtype == np.float32 else np.dtype(np.float64)


def from_wire(original: np.ndarray, summed: np.ndarray) -> np.ndarray:
    """A sum in the dtype the caller gets back: integers and booleans (summed as float64) as int64."""
    if original.dtype.kind in "biu":
        return np.rint(summed).astype(np.int64)
    return summed
