"""The step's fast paths give what their plain forms give: the logistic loss in place, the learning-rate
schedule recomputed only where it can change, the histogram's gathered bincounts, the statistics thread."""
from __future__ import annotations

import numpy as np
import pytest

from smlocal.algorithms.linear_learner import model as ll_model
from smlocal.algorithms.linear_learner.background import OrderedWorker
from smlocal.algorithms.linear_learner.losses import Logistic
from smlocal.algorithms.linear_learner.model import EpochStats
from smlocal.algorithms.linear_learner.optim import ModelHypers, ParallelOptimizer, scheduled_lr
from smlocal.algorithms.linear_learner.selection import Criterion, ThresholdHistogram


def test_logistic_matches_its_plain_form_bit_for_bit():
    rng = np.random.default_rng(0)
    S = (rng.standard_normal((300, 7)) * 8).astype(np.float32)
    S[0, :3] = [0.0, -0.0, 90.0]
    y = (rng.random((300, 1)) < 0.5).astype(np.float32)
    L, G = Logistic()(np, S.copy(), y)
    e = np.exp(-np.abs(S))
    inv = 1 / (1 + e)
    assert np.array_equal(L, np.log1p(e) + np.maximum(S, 0) - y * S)
    assert np.array_equal(G, np.tanh(S * 0.5) * 0.5 - (y - 0.5))  # sigmoid(s) - y
    assert np.array_equal(Logistic().gradient(np, S, y), G)  # a step's gradient without the losses
    assert np.allclose(G, np.where(S >= 0, inv, e * inv) - y, rtol=0, atol=2.5e-7)  # the exp form of the sigmoid


def test_cached_learning_rates_follow_the_schedule():
    h = ModelHypers(lr=np.array([0.1, 0.05, 0.2]), wd=np.zeros(3), l1=np.zeros(3), momentum=np.zeros(3),
                    step=np.array([3.0, 7.0, 10.0]), factor=np.array([0.5, 0.9, 0.8]),
                    min_lr=np.array([1e-3, 1e-2, 1e-5]))
    opt = ParallelOptimizer(np, "sgd", (2, 3), h)
    for t in range(1, 60):
        opt.t = t
        assert np.allclose(opt._lr_matrix()[0], scheduled_lr(h, t, True).astype(np.float32))
    opt.load_state(5, {})  # resuming goes back to the schedule of update 5
    assert np.allclose(opt._lr_matrix()[0], scheduled_lr(h, 5, True).astype(np.float32))


def test_histogram_gathers_batches_into_the_same_counts(monkeypatch):
    rng = np.random.default_rng(1)
    batches = [((rng.standard_normal((50, 3)) * 10).astype(np.float32),
                (rng.random((50, 1)) < 0.4).astype(np.float32)) for _ in range(9)]
    monkeypatch.setattr(ThresholdHistogram, "PENDING", 120)  # flushes mid-way, and one batch over it
    gathered = ThresholdHistogram(np, 3, bins=40)
    for S, y in batches:
        gathered.add(S, y)
    expected = np.zeros(3 * 2 * 40, np.int64)
    for S, y in batches:
        pos = np.clip(S * (40 / 24.0), -20, 19) + (np.arange(3) * 80 + 20) + y * 40
        expected += np.bincount(pos.astype(np.int64).ravel(), minlength=expected.size)
    assert np.array_equal(gathered.counts, expected)
    gathered.counts = expected * 2  # replaced (several hosts' sums): nothing pending is added on top
    assert np.array_equal(gathered.counts, expected * 2)


@pytest.mark.parametrize("thread", ["1", "0"])
def test_statistics_thread_sums_as_a_serial_pass(monkeypatch, thread):
    monkeypatch.setenv(ll_model.STATS_THREAD_ENV, thread)
    rng = np.random.default_rng(2)
    c = Criterion("sampled_accuracy", True, "threshold", "accuracy")
    stats, serial = EpochStats(np, 4, c, binary=True), EpochStats(np, 4, c, binary=True)
    serial._worker = None
    assert (stats._worker is not None) == (thread == "1")
    for _ in range(21):
        S = rng.standard_normal((40, 4)).astype(np.float32)
        y = (rng.random((40, 1)) < 0.5).astype(np.float32)
        L, _ = Logistic()(np, S, y, grad=False)
        stats.add(S, y, L)
        serial.add(S, y, L)
    assert np.array_equal(stats.objective(), serial.objective())
    assert all(np.array_equal(a, b) for a, b in zip(stats.criterion_values(), serial.criterion_values()))


def test_worker_reraises_an_error_of_a_call():
    worker = OrderedWorker(backlog=2)
    done = []
    worker.submit(done.append, 1)
    worker.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        worker.wait()
    assert done == [1]
    worker.submit(done.append, 2)  # usable again
    worker.wait()
    assert done == [1, 2]
