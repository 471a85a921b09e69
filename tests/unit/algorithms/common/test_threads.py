"""BLAS thread counts: the cores this process may use, one left to the reader thread, the limit applied."""
from __future__ import annotations

import os

from smlocal.algorithms.common import threads


def test_usable_cores_follow_the_affinity_and_fall_back_to_the_cpu_count(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert threads.usable_cores() == 3

    def no_affinity(pid):
        raise OSError("not supported")

    monkeypatch.setattr(os, "sched_getaffinity", no_affinity, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert threads.usable_cores() == 1


def test_every_core_but_the_readers_and_at_least_one(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    assert threads.math_threads_beside_reader() == 7
    monkeypatch.setattr(threads, "usable_cores", lambda: 1)
    assert threads.math_threads_beside_reader() == 1


def test_the_limit_applies_inside_the_context_only():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads()
    with threads.limit_blas_threads(1):
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before
