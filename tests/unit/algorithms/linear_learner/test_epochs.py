"""An epoch's training pass: short passes are gone over until the epoch has made MIN_UPDATES_PER_EPOCH updates."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from smlocal.algorithms.linear_learner import epochs
from smlocal.algorithms.linear_learner.losses import make_loss
from smlocal.algorithms.linear_learner.model import ParallelLinear, PreparedBatch, initial_parameters
from smlocal.algorithms.linear_learner.optim import ModelHypers, ParallelOptimizer
from smlocal.algorithms.linear_learner.selection import criterion_for

D, M = 4, 2


def _model() -> ParallelLinear:
    P = initial_parameters(D, M, method="uniform", scale=0.07, sigma=0.01, bias=0.0, use_bias=True)
    ones = np.ones(M)
    hypers = ModelHypers(lr=0.1 * ones, wd=0 * ones, l1=0 * ones, momentum=0 * ones, step=100 * ones,
                         factor=0.99 * ones, min_lr=1e-5 * ones)
    return ParallelLinear(np, P.astype(np.float64), M, 1, make_loss("squared_loss"),
                          ParallelOptimizer(np, "adam", P.shape, hypers, dtype=np.float64))


def _batches(count: int, size: int = 20) -> list[PreparedBatch]:
    rng = np.random.default_rng(count)
    X = rng.normal(size=(count * size, D))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=count * size)
    return [PreparedBatch(X=X[i:i + size], y=y[i:i + size, None], y_raw=y[i:i + size].astype(np.float32))
            for i in range(0, len(y), size)]


def _training(model: ParallelLinear, batches: list[PreparedBatch], cluster=None) -> SimpleNamespace:
    source = SimpleNamespace(prepared_pass=lambda first_raw=None: iter(batches))
    return SimpleNamespace(
        model=model, sources={"train": source}, cluster=cluster or SimpleNamespace(size=1),
        cfg=SimpleNamespace(predictor_type="regressor", mini_batch_size=20),
        objective=SimpleNamespace(criterion=criterion_for("regressor", "accuracy", "mse_objective"), factor=1.0),
        state=SimpleNamespace(epochs_done=0), job=SimpleNamespace(log=logging.getLogger("test-ll-epochs")))


@pytest.mark.parametrize("batches, updates", [(1, 8), (3, 9), (7, 14), (8, 8), (10, 10)])
def test_an_epoch_makes_at_least_the_minimum_of_updates(batches, updates):
    assert epochs.MIN_UPDATES_PER_EPOCH == 8
    model = _model()
    epochs._train_pass(_training(model, _batches(batches)), None)
    assert model.opt.t == updates


def test_an_epoch_of_one_mini_batch_is_that_many_full_batch_steps_and_is_ranked_after_them():
    batches, alone, model = _batches(1), _model(), _model()
    for _ in range(epochs.MIN_UPDATES_PER_EPOCH):
        alone.train_step(batches[0])
    stats = epochs._train_pass(_training(model, batches), None)
    np.testing.assert_array_equal(model.P, alone.P)
    _, L = alone.evaluate(batches[0])
    np.testing.assert_allclose(stats.objective(), L.mean(axis=0))  # the objective of the models kept


class _Hosts:
    """Two hosts: this one and another whose number of kept mini-batches is ``other``."""

    size = 2

    def __init__(self, other: int):
        self.other = other

    def allgather(self, array):
        return np.array([np.asarray(array), [self.other]])


@pytest.mark.parametrize("other, repeats", [(3, 2), (1, 7), (8, 0), (-1, 0)])
def test_several_hosts_repeat_alike_for_the_longest_shard(other, repeats):
    # this host kept 1 mini-batch; -1: the other host's pass was too long to keep
    training = _training(_model(), [], cluster=_Hosts(other))
    assert epochs._repeats(training, _batches(1)) == repeats
