"""The final step's pure parts: the served score of each predictor type and ``metrics_params``."""
from __future__ import annotations

import numpy as np
import pytest

from smlocal.algorithms.linear_learner.config import resolve
from smlocal.algorithms.linear_learner.final import link, metrics_params
from smlocal.algorithms.linear_learner.scaler import Scaler

SCALER = Scaler(mean=np.zeros(2), std=np.ones(2), label_mean=100.0, label_std=4.0)


def test_link_gives_the_served_score_of_each_predictor_type():
    raw = np.array([[-2.0], [0.0], [3.0]])
    binary = resolve({"predictor_type": "binary_classifier"})
    np.testing.assert_allclose(link(raw, binary, SCALER), 1.0 / (1.0 + np.exp(-raw)))
    hinge = resolve({"predictor_type": "binary_classifier", "loss": "hinge_loss"})
    np.testing.assert_array_equal(link(raw, hinge, SCALER), raw)  # a margin, not a probability
    regressor = resolve({"predictor_type": "regressor"})
    np.testing.assert_allclose(link(raw, regressor, SCALER), raw * 4.0 + 100.0)  # the label's units
    multiclass = resolve({"predictor_type": "multiclass_classifier", "num_classes": "3"})
    scores = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, 0.0]])
    probs = link(scores, multiclass, SCALER)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs[0], np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum())
    assert np.all(np.isfinite(probs)) and probs[1, 0] == pytest.approx(1.0)  # no overflow for large scores


def test_metrics_params_key_order_and_values():
    cfg = resolve({"predictor_type": "regressor", "loss": "eps_insensitive_absolute_loss",
                   "loss_insensitivity": "0.2"})
    params = metrics_params(cfg, 0.5, 3.0, None)
    assert list(params) == ["quantile", "huber_delta", "margin", "loss_insensitivity", "eps_insensitive_loss_type",
                            "accuracy_top_k", "f_beta", "positive_example_weight_mult", "class_weights", "threshold"]
    assert params["loss_insensitivity"] == 0.2 and params["eps_insensitive_loss_type"] == "absolute"
    assert params["f_beta"] is None and params["positive_example_weight_mult"] == 1.0  # a regressor's
    binary = metrics_params(resolve({"predictor_type": "binary_classifier", "loss": "hinge_loss", "margin": "0.5"}),
                            0.0, 3.0, None)
    assert (binary["margin"], binary["positive_example_weight_mult"], binary["f_beta"]) == (0.5, 3.0, 1.0)
    weights = metrics_params(resolve({"predictor_type": "multiclass_classifier", "num_classes": "3"}), 0.5, 1.0,
                             np.array([0.5, 1.0, 2.0], np.float32))
    assert weights["class_weights"] == [0.5, 1.0, 2.0] and weights["quantile"] is None
