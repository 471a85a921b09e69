"""How many BLAS threads the algorithms' per-batch math runs on, and the limit that applies it."""
from __future__ import annotations

import os
from contextlib import AbstractContextManager


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores)


def math_threads_beside_reader() -> int:
    """BLAS threads for the host's share of a GPU job's work: every core but one, which the reader thread
    parses on. (k-means on a CPU instead splits each batch's rows over every core, one BLAS thread each:
    measured faster on a quiet 2-core host, see ``kmeans.job.fit``.)
    """
    return max(1, usable_cores() - 1)


def limit_blas_threads(threads: int) -> AbstractContextManager:
    """A context in which the BLAS libraries loaded in this process use at most ``threads`` threads."""
    from threadpoolctl import threadpool_limits  # a declared dependency (scikit-learn needs it too)

    return threadpool_limits(limits=threads, user_api="blas")
