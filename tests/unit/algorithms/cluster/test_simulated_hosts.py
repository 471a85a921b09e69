"""Tests of linear learner's merged statistics across several hosts, simulated by threads that sum their arrays
(what dist_sync does), so each merge is checked against one host holding all the rows."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.algorithms.cluster import Cluster
from smlocal.algorithms.linear_learner.config import resolve
from smlocal.algorithms.linear_learner.losses import Logistic
from smlocal.algorithms.linear_learner.model import EpochStats, ParallelLinear, PreparedBatch
from smlocal.algorithms.linear_learner.optim import ParallelOptimizer
from smlocal.algorithms.linear_learner.scaler import fit_scaler
from smlocal.algorithms.linear_learner.selection import criterion_for
from smlocal.algorithms.linear_learner.spread import spread
from smlocal.algorithms.linear_learner.state import start_state
from smlocal.algorithms.linear_learner.sync import GradientSync, merge_stats


class _Group:
    """n hosts as threads: ``allreduce_sum`` adds the arrays of all of them (what dist_sync does)."""

    def __init__(self, n: int):
        self.n = n
        self._barrier = threading.Barrier(n)
        self._slots: list = [None] * n

    def member(self, rank: int) -> Cluster:
        group = self

        class Member(Cluster):
            def allreduce_sum(self, array):
                group._slots[rank] = np.asarray(array)
                group._barrier.wait()
                total = sum(np.asarray(s, dtype=np.float64) for s in group._slots)
                group._barrier.wait()
                return total.astype(np.float32) if np.asarray(array).dtype == np.float32 else total

        return Member(tuple(f"algo-{i + 1}" for i in range(self.n)), f"algo-{rank + 1}")

    def run(self, work) -> list:
        results: list = [None] * self.n
        threads = [threading.Thread(target=lambda r=r: results.__setitem__(r, work(self.member(r), r)))
                   for r in range(self.n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        return results


@pytest.mark.parametrize("sparse", [False, True])
def test_merged_scaler_equals_the_scaler_of_all_rows(sparse):
    rng = np.random.default_rng(3)
    shards = [(rng.normal(size=(n, 4)) * [1, 5, 0, 50] + [3, -200, 7, 1e4]).astype(np.float32) for n in (30, 50, 20)]
    labels = [rng.normal(size=len(x)) * 10 + 100 for x in shards]
    kw = dict(normalize_data=True, unbias_data=True, normalize_label=True, unbias_label=True)
    blocks = [sp.csr_matrix(x) for x in shards] if sparse else shards
    whole = fit_scaler([sp.vstack(blocks, format="csr") if sparse else np.vstack(blocks)], np.concatenate(labels), **kw)
    merged = _Group(3).run(lambda c, r: fit_scaler([blocks[r]], labels[r], allreduce=c.allreduce_sum, **kw))
    for scaler in merged:
        np.testing.assert_allclose(scaler.mean, whole.mean, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(scaler.std, whole.std, rtol=1e-6)
        assert scaler.label_mean == pytest.approx(whole.label_mean) and scaler.label_std == pytest.approx(whole.label_std)
        assert scaler.std[2] == 1.0  # a constant column is not divided


def test_merged_start_state_uses_every_hosts_class_balance():
    cfg = resolve({"predictor_type": "binary_classifier", "feature_dim": "3", "num_models": "4"})
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(40, 3)).astype(np.float32) for _ in range(2)]
    y = [np.zeros(40, np.float32), (np.arange(40) % 2).astype(np.float32)]  # 20 positives of 80 rows
    states = _Group(2).run(lambda c, r: start_state(cfg, [X[r]], y[r], allreduce=c.allreduce_sum))
    whole = start_state(cfg, [np.vstack(X)], np.concatenate(y))
    for s in states:
        np.testing.assert_array_equal(s.P, whole.P)
        np.testing.assert_allclose(s.spread.pos_weight, spread(cfg, 4, balance_ratio=3.0).pos_weight)
        np.testing.assert_allclose(s.scaler.mean, whole.scaler.mean, rtol=1e-9, atol=1e-12)


def _batch(X: np.ndarray, y: np.ndarray) -> PreparedBatch:
    return PreparedBatch(X=X, y=y.reshape(-1, 1), y_raw=y)


def _model(P: np.ndarray, sync=None) -> ParallelLinear:
    opt = ParallelOptimizer(np, "sgd", P.shape, spread(resolve({"predictor_type": "binary_classifier",
                                                                 "feature_dim": "3", "num_models": "2",
                                                                 "momentum": "0"}), 2).columns(1))
    return ParallelLinear(np, P.copy(), 2, 1, Logistic(), opt, sync=sync)


def test_a_synchronised_step_is_the_step_of_the_global_batch():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3)).astype(np.float32)
    y = (rng.random(30) > 0.5).astype(np.float32)
    P = rng.normal(size=(4, 2)).astype(np.float32)
    whole = _model(P)
    whole.train_step(_batch(X, y))
    shards = [(X[:20], y[:20]), (X[20:], y[20:])]

    def host(c, r):
        m = _model(P, GradientSync(c, np, P.shape))
        m.train_step(_batch(*shards[r]))  # both hosts have a batch: one step
        steps = 0
        while m.idle_step():  # both out of rows: no more steps
            steps += 1
        return m.P, steps

    for P_host, idle_steps in _Group(2).run(host):
        np.testing.assert_allclose(P_host, whole.P, rtol=1e-5, atol=1e-6)
        assert idle_steps == 0


def test_a_host_out_of_rows_keeps_stepping_with_the_others():
    rng = np.random.default_rng(2)
    P = rng.normal(size=(4, 2)).astype(np.float32)
    batches = [[_batch(rng.normal(size=(5, 3)).astype(np.float32), np.ones(5, np.float32)) for _ in range(k)]
               for k in (3, 1)]

    def host(c, r):
        m = _model(P, GradientSync(c, np, P.shape))
        for b in batches[r]:
            m.train_step(b)
        while m.idle_step():
            pass
        return m.P, m.opt.t

    (P1, t1), (P2, t2) = _Group(2).run(host)
    assert t1 == t2 == 3  # three global steps on both hosts
    np.testing.assert_array_equal(P1, P2)


def test_merged_epoch_statistics_sum_every_host():
    criterion = criterion_for("binary_classifier", "accuracy", "binary_classification_cross_entropy_objective")
    rng = np.random.default_rng(4)
    S = [rng.normal(size=(n, 2)).astype(np.float32) for n in (10, 15)]
    Y = [(rng.random((n, 1)) > 0.5).astype(np.float32) for n in (10, 15)]
    L = [rng.random((n, 2)).astype(np.float32) for n in (10, 15)]
    whole = EpochStats(np, 2, criterion, binary=True)
    for s, y, loss in zip(S, Y, L, strict=True):
        whole.add(s, y, loss)

    def host(c, r):
        stats = EpochStats(np, 2, criterion, binary=True)
        stats.add(S[r], Y[r], L[r])
        merge_stats(stats, c)
        return stats

    for stats in _Group(2).run(host):
        assert stats.rows == 25
        # float32 sums of the rows, grouped otherwise on one host (one group of both batches) than on two
        np.testing.assert_allclose(stats.objective(), whole.objective(), rtol=1e-6)
        np.testing.assert_array_equal(stats.hist.counts, whole.hist.counts)
        np.testing.assert_array_equal(stats.criterion_values()[0], whole.criterion_values()[0])
