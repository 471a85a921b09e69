"""The parallel optimizer: MXNet's update rules, per-column hyperparameters, l1, bias multipliers."""
from __future__ import annotations

import numpy as np
import pytest

from smlocal.algorithms.linear_learner.optim import ADAM_EPS, RMSPROP_GAMMA, ModelHypers, ParallelOptimizer, scheduled_lr


def hypers(K, lr=0.1, wd=0.0, l1=0.0, momentum=0.0, step=100, factor=0.99, min_lr=1e-5):
    full = lambda v: np.broadcast_to(np.asarray(v, dtype=np.float64), (K,)).copy()  # noqa: E731
    return ModelHypers(lr=full(lr), wd=full(wd), l1=full(l1), momentum=full(momentum), step=full(step),
                       factor=full(factor), min_lr=full(min_lr))


def test_scheduler_is_mxnet_factor_scheduler():
    h = hypers(2, lr=[1.0, 0.1], step=[10, 5], factor=0.5, min_lr=[0.2, 1e-9])
    assert list(scheduled_lr(h, 1, True)) == [1.0, 0.1]
    assert list(scheduled_lr(h, 10, True)) == [1.0, 0.1 * 0.5]
    assert list(scheduled_lr(h, 11, True)) == [0.5, 0.1 * 0.25]
    assert scheduled_lr(h, 1000, True)[0] == 0.2  # floored at the minimum once it decays
    assert list(scheduled_lr(h, 1000, False)) == [1.0, 0.1]


def _plain(P, g, kind, lr, wd, t, state, b1=0.9, b2=0.999, mom=0.0):
    """Reference single-model update in float64, as MXNet writes it."""
    g = g + wd * P
    if kind == "sgd":
        state["mom"] = mom * state.get("mom", 0.0) - lr * g
        return P + state["mom"]
    if kind == "adam":
        state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
        state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        return P - lr_t * state["m"] / (np.sqrt(state["v"]) + ADAM_EPS)
    state["n"] = RMSPROP_GAMMA * state.get("n", 0.0) + (1 - RMSPROP_GAMMA) * g * g
    return P - lr * g / np.sqrt(state["n"] + ADAM_EPS)


@pytest.mark.parametrize("kind", ["sgd", "adam", "rmsprop"])
def test_each_column_follows_its_own_hyperparameters(kind):
    rng = np.random.default_rng(0)
    d, K, steps = 5, 3, 4
    lr, wd, mom = np.array([0.1, 0.03, 0.2]), np.array([0.0, 0.01, 0.1]), np.array([0.0, 0.5, 0.9])
    opt = ParallelOptimizer(np, kind, (d + 1, K), hypers(K, lr=lr, wd=wd, momentum=mom), use_scheduler=False,
                            bias_lr_mult=1.0, bias_wd_mult=1.0, dtype=np.float64)
    P = rng.normal(size=(d + 1, K))
    start = P.copy()
    grads = [rng.normal(size=(d + 1, K)) for _ in range(steps)]
    for g in grads:
        opt.step(P, g.copy())
    # replay each column alone with the reference rule
    P_ref = np.empty_like(P)
    for k in range(K):
        col, state = start[:, k].copy(), {}
        for t, g in enumerate(grads, 1):
            col = _plain(col, g[:, k], kind, lr[k], wd[k], t, state,
                         mom=mom[k] if kind == "sgd" else 0.0)
        P_ref[:, k] = col
    np.testing.assert_allclose(P, P_ref, rtol=1e-10, atol=1e-12)


def test_bias_row_multipliers_and_frozen_bias():
    d, K = 3, 2
    g = np.ones((d + 1, K))
    P = np.zeros((d + 1, K))
    ParallelOptimizer(np, "sgd", P.shape, hypers(K, lr=0.1), use_scheduler=False, bias_lr_mult=10.0,
                      dtype=np.float64).step(P, g.copy())
    np.testing.assert_allclose(P[:d], -0.1)
    np.testing.assert_allclose(P[d], -1.0)
    P = np.zeros((d + 1, K))
    ParallelOptimizer(np, "sgd", P.shape, hypers(K, lr=0.1), use_scheduler=False, use_bias=False,
                      dtype=np.float64).step(P, g.copy())
    np.testing.assert_allclose(P[d], 0.0)
    # bias_wd_mult 0: the bias is not decayed
    P = np.full((d + 1, K), 2.0)
    ParallelOptimizer(np, "sgd", P.shape, hypers(K, lr=0.1, wd=0.5), use_scheduler=False, bias_lr_mult=1.0,
                      bias_wd_mult=0.0, dtype=np.float64).step(P, np.zeros((d + 1, K)))
    np.testing.assert_allclose(P[:d], 2.0 - 0.1 * 0.5 * 2.0)
    np.testing.assert_allclose(P[d], 2.0)


@pytest.mark.parametrize("kind", ["sgd", "adam", "rmsprop"])
def test_l1_gives_exact_zeros_and_spares_the_bias(kind):
    rng = np.random.default_rng(1)
    d, K = 20, 2
    P = rng.normal(scale=0.01, size=(d + 1, K))
    opt = ParallelOptimizer(np, kind, P.shape, hypers(K, lr=0.01, l1=[0.0, 5.0]), use_scheduler=False,
                            dtype=np.float64)
    for _ in range(20):
        opt.step(P, rng.normal(scale=0.01, size=P.shape))
    assert np.all(P[:d, 1] == 0.0)
    assert np.count_nonzero(P[:d, 0]) == d
    assert P[d, 1] != 0.0


def test_state_round_trip_continues_identically():
    rng = np.random.default_rng(2)
    shape = (4, 3)
    grads = [rng.normal(size=shape) for _ in range(6)]
    a = ParallelOptimizer(np, "adam", shape, hypers(3, lr=0.05), dtype=np.float64)
    Pa = np.zeros(shape)
    for g in grads:
        a.step(Pa, g.copy())
    b = ParallelOptimizer(np, "adam", shape, hypers(3, lr=0.05), dtype=np.float64)
    Pb = np.zeros(shape)
    for g in grads[:3]:
        b.step(Pb, g.copy())
    c = ParallelOptimizer(np, "adam", shape, hypers(3, lr=0.05), dtype=np.float64)
    c.load_state(b.t, b.state_arrays())
    for g in grads[3:]:
        c.step(Pb, g.copy())
    np.testing.assert_allclose(Pa, Pb, rtol=1e-12)
