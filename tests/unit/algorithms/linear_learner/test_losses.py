"""Linear learner losses: values against their definitions, gradients against finite differences."""
from __future__ import annotations

import numpy as np
import pytest

from smlocal.algorithms.linear_learner.losses import make_loss, objective_name

SCALAR_LOSSES = ["logistic", "hinge_loss", "squared_loss", "absolute_loss", "eps_insensitive_squared_loss",
                 "eps_insensitive_absolute_loss", "quantile_loss", "huber_loss"]
PARAMS = dict(margin=0.7, quantile=0.3, loss_insensitivity=0.2, huber_delta=0.5)


def _labels(name, rng, n):
    if name in ("logistic", "hinge_loss"):
        return rng.integers(0, 2, size=(n, 1)).astype(np.float64)
    return rng.normal(size=(n, 1))


def _away_from_kinks(name, S, y):
    """Keep finite differences off the points where a loss is not differentiable."""
    kinks = {"hinge_loss": [lambda: PARAMS["margin"] - (2 * y - 1) * S],
             "absolute_loss": [lambda: S - y], "quantile_loss": [lambda: S - y],
             "eps_insensitive_absolute_loss": [lambda: np.abs(S - y) - PARAMS["loss_insensitivity"], lambda: S - y],
             "eps_insensitive_squared_loss": [lambda: np.abs(S - y) - PARAMS["loss_insensitivity"]],
             "huber_loss": [lambda: np.abs(S - y) - PARAMS["huber_delta"]]}
    ok = np.ones_like(S, dtype=bool)
    for kink in kinks.get(name, []):
        ok &= np.abs(kink()) > 1e-3
    return ok


@pytest.mark.parametrize("name", SCALAR_LOSSES)
def test_gradient_matches_finite_differences(name):
    rng = np.random.default_rng(1)
    n, M = 50, 4
    S = rng.normal(scale=2.0, size=(n, M))
    y = _labels(name, rng, n)
    loss = make_loss(name, **PARAMS)
    L, G = loss(np, S, y)
    assert L.shape == (n, M) and G.shape == (n, M)
    h = 1e-6
    numeric = (loss(np, S + h, y, grad=False)[0] - loss(np, S - h, y, grad=False)[0]) / (2 * h)
    ok = _away_from_kinks(name, S, y)
    assert ok.mean() > 0.8
    np.testing.assert_allclose(G[ok], numeric[ok], rtol=1e-5, atol=1e-6)


def test_softmax_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    n, C, M = 20, 4, 3
    S = rng.normal(size=(n, C, M))
    y = rng.integers(0, C, size=(n, 1)).astype(np.float64)
    loss = make_loss("softmax_loss")
    L, G = loss(np, S, y)
    assert L.shape == (n, M) and G.shape == (n, C, M)
    h = 1e-6
    numeric = np.zeros_like(S)
    for c in range(C):
        up, down = S.copy(), S.copy()
        up[:, c, :] += h
        down[:, c, :] -= h
        numeric[:, c, :] = (loss(np, up, y, grad=False)[0] - loss(np, down, y, grad=False)[0]) / (2 * h)
    np.testing.assert_allclose(G, numeric, rtol=1e-5, atol=1e-7)


def test_values_follow_the_definitions():
    s = np.array([[-2.0, 0.5, 3.0]]).T
    y1 = np.ones((3, 1))
    np.testing.assert_allclose(make_loss("logistic")(np, s, y1)[0], np.log1p(np.exp(-s)))
    np.testing.assert_allclose(make_loss("logistic")(np, s, 0 * y1)[0], np.log1p(np.exp(s)))
    np.testing.assert_allclose(make_loss("hinge_loss", margin=1.0)(np, s, y1)[0], np.maximum(0, 1 - s))
    np.testing.assert_allclose(make_loss("squared_loss")(np, s, y1)[0], (s - 1) ** 2)
    np.testing.assert_allclose(make_loss("quantile_loss", quantile=0.9)(np, s, y1)[0],
                               np.where(1 > s, 0.9 * (1 - s), 0.1 * (s - 1)))
    np.testing.assert_allclose(make_loss("huber_loss", huber_delta=1.0)(np, s, y1)[0],
                               np.where(np.abs(s - 1) <= 1, 0.5 * (s - 1) ** 2, np.abs(s - 1) - 0.5))
    np.testing.assert_allclose(make_loss("eps_insensitive_absolute_loss", loss_insensitivity=0.6)(np, s, y1)[0],
                               np.maximum(np.abs(s - 1) - 0.6, 0))
    # no overflow for large margins
    big = np.array([[800.0], [-800.0]])
    L, G = make_loss("logistic")(np, big, np.array([[0.0], [1.0]]))
    np.testing.assert_allclose(L, [[800.0], [800.0]])
    np.testing.assert_allclose(G, [[1.0], [-1.0]])


def test_softmax_value_is_the_cross_entropy():
    rng = np.random.default_rng(3)
    S = rng.normal(size=(6, 5, 2))
    y = np.array([[0], [1], [4], [2], [3], [0]], dtype=np.float64)
    L, _ = make_loss("softmax_loss")(np, S, y)
    p = np.exp(S) / np.exp(S).sum(axis=1, keepdims=True)
    expected = -np.log(p[np.arange(6), y[:, 0].astype(int), :])
    np.testing.assert_allclose(L, expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["squared_loss", "absolute_loss", "eps_insensitive_squared_loss",
                                  "eps_insensitive_absolute_loss", "quantile_loss", "huber_loss"])
def test_in_units_rescales_by_the_degree(name):
    """loss(s, y) in user units == unit**degree * loss_in_units(s / unit, y / unit)."""
    rng = np.random.default_rng(4)
    S, y = rng.normal(size=(30, 2)) * 5, rng.normal(size=(30, 1)) * 5
    loss = make_loss(name, **PARAMS)
    unit = 3.7
    raw = loss(np, S, y, grad=False)[0]
    normalised = loss.in_units(unit)(np, S / unit, y / unit, grad=False)[0]
    np.testing.assert_allclose(raw, normalised * unit ** loss.degree, rtol=1e-10)


def test_float32_stays_float32():
    S = np.zeros((4, 3), np.float32)
    y = np.ones((4, 1), np.float32)
    for name in SCALAR_LOSSES:
        L, G = make_loss(name)(np, S, y)
        assert L.dtype == np.float32 and G.dtype == np.float32, name


def test_objective_names():
    assert objective_name("binary_classifier", "logistic") == "binary_classification_cross_entropy_objective"
    assert objective_name("multiclass_classifier", "softmax_loss") == "multiclass_cross_entropy_objective"
    assert objective_name("regressor", "squared_loss") == "mse_objective"
    assert objective_name("regressor", "absolute_loss") == "absolute_loss_objective"
    assert objective_name("binary_classifier", "hinge_loss").endswith("_objective")
