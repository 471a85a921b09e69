"""Per-model hyperparameters: model 0 keeps the given values, the others spread around them."""
from __future__ import annotations

import numpy as np

from smlocal.algorithms.linear_learner.config import resolve
from smlocal.algorithms.linear_learner.spread import latin_hypercube, spread


def test_model_zero_is_the_given_configuration_and_others_spread():
    cfg = resolve({"predictor_type": "binary_classifier", "learning_rate": "0.02", "wd": "0.001"})
    s = spread(cfg, 32)
    assert s.num_models == 32
    assert (s.lr[0], s.wd[0], s.l1[0], s.step[0], s.factor[0], s.min_lr[0]) == (0.02, 0.001, 0.0, 100, 0.99, 1e-5)
    assert np.all((s.lr[1:] >= 0.02 / 30) & (s.lr[1:] <= 0.02 * 3))
    assert np.all((s.wd[1:] >= 0.001 / 100) & (s.wd[1:] <= 0.001 * 10))
    assert len(np.unique(s.lr)) == 32
    assert 10 <= np.count_nonzero(s.l1) <= 20  # auto l1: about half the models
    assert np.all((s.factor > 0) & (s.factor < 1)) and np.all(s.step >= 1)
    assert np.all(s.pos_weight == 1.0)
    assert s.describe(0, "adam") == {"lr_scheduler_step": 100, "wd": 0.001, "optimizer": "adam",
                                     "lr_scheduler_factor": 0.99, "l1": 0.0, "learning_rate": 0.02,
                                     "lr_scheduler_minimum_lr": 1e-05}


def test_deterministic_and_explicit_zeros_stay_zero():
    cfg = resolve({"predictor_type": "regressor", "wd": "0", "l1": "0"})
    a, b = spread(cfg, 8), spread(cfg, 8)
    assert all(np.array_equal(x, y) for x, y in zip(a.arrays().values(), b.arrays().values()))
    assert np.all(a.wd == 0) and np.all(a.l1 == 0)


def test_positive_weights():
    auto = spread(resolve({"predictor_type": "binary_classifier", "positive_example_weight_mult": "auto"}), 16,
                  balance_ratio=9.0)
    assert auto.pos_weight[0] == 1.0 and np.all((auto.pos_weight >= 1.0) & (auto.pos_weight <= 9.0))
    assert auto.pos_weight.max() > 4.0
    balanced = spread(resolve({"predictor_type": "binary_classifier", "positive_example_weight_mult": "balanced"}),
                      4, balance_ratio=3.0)
    assert np.all(balanced.pos_weight == 3.0)


def test_sgd_momentum_spread_and_columns():
    s = spread(resolve({"predictor_type": "regressor", "optimizer": "sgd"}), 6)
    assert s.momentum[0] == 0.0 and np.all((s.momentum >= 0) & (s.momentum < 0.9))
    cols = s.columns(3)
    np.testing.assert_array_equal(cols.lr, np.tile(s.lr, 3))  # class-major: column c*M + m
    fixed = spread(resolve({"predictor_type": "regressor", "optimizer": "sgd", "momentum": "0.5"}), 6)
    assert np.all(fixed.momentum == 0.5)


def test_latin_hypercube_covers_each_stratum():
    u = latin_hypercube(10, 3, np.random.default_rng(0))
    for axis in range(3):
        assert sorted(np.floor(u[:, axis] * 10).astype(int)) == list(range(10))
