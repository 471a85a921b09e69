"""The parallel model matrix: M models in one pass train exactly like M separate runs."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.algorithms.linear_learner.losses import make_loss
from smlocal.algorithms.linear_learner.model import EpochStats, ParallelLinear, PreparedBatch, initial_parameters
from smlocal.algorithms.linear_learner.optim import ModelHypers, ParallelOptimizer
from smlocal.algorithms.linear_learner.selection import criterion_for

D = 6


def _hypers(M, C, lr, wd):
    tile = lambda v: np.tile(np.asarray(v, dtype=np.float64), C)  # noqa: E731 - class-major columns
    return ModelHypers(lr=tile(lr), wd=tile(wd), l1=tile(np.zeros(M)), momentum=tile(np.zeros(M)),
                       step=tile(np.full(M, 3.0)), factor=tile(np.full(M, 0.9)), min_lr=tile(np.full(M, 1e-4)))


def _batches(kind, rng, n=240, size=40):
    X = rng.normal(size=(n, D)).astype(np.float32)
    if kind == "binary":
        y = (X[:, 0] + rng.normal(size=n) > 0).astype(np.float32)
    elif kind == "multiclass":
        y = rng.integers(0, 3, size=n).astype(np.float32)
    else:
        y = (X @ rng.normal(size=D) + rng.normal(size=n)).astype(np.float32)
    return [PreparedBatch(X=X[i:i + size], y=y[i:i + size, None].copy(), y_raw=y[i:i + size])
            for i in range(0, n, size)]


CASES = [("binary", "logistic", 1), ("binary", "hinge_loss", 1), ("multiclass", "softmax_loss", 3),
         ("regression", "squared_loss", 1), ("regression", "huber_loss", 1)]


@pytest.mark.parametrize("kind,loss_name,C", CASES)
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_parallel_models_equal_separate_runs(kind, loss_name, C, optimizer):
    rng = np.random.default_rng(0)
    batches = _batches(kind, rng)
    M = 3
    lr, wd = np.array([0.05, 0.01, 0.2]), np.array([0.0, 0.001, 0.01])
    pos = np.array([1.0, 2.0, 0.5]) if kind == "binary" else None
    loss = make_loss(loss_name)
    P = initial_parameters(D, M * C, method="uniform", scale=0.07, sigma=0.01, bias=0.1, use_bias=True)
    together = ParallelLinear(np, P.astype(np.float64), M, C, loss,
                              ParallelOptimizer(np, optimizer, P.shape, _hypers(M, C, lr, wd), dtype=np.float64),
                              pos_weight=pos)
    for _ in range(2):
        for b in batches:
            together.train_step(b)
    for m in range(M):
        alone = ParallelLinear(np, P[:, m::M].astype(np.float64), 1, C, loss,
                               ParallelOptimizer(np, optimizer, (D + 1, C), _hypers(1, C, lr[m:m + 1], wd[m:m + 1]),
                                                 dtype=np.float64),
                               pos_weight=None if pos is None else pos[m:m + 1])
        for _ in range(2):
            for b in batches:
                alone.train_step(b)
        np.testing.assert_allclose(together.model_block(m), alone.model_block(0), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("kind,loss_name,C", [c for c in CASES if c[1] != "hinge_loss"])
def test_step_is_gradient_descent_on_the_mean_loss(kind, loss_name, C):
    """With plain SGD (lr 1, no wd) the update equals minus the finite-difference gradient."""
    rng = np.random.default_rng(1)
    b = _batches(kind, rng, n=30, size=30)[0]
    b = PreparedBatch(X=b.X.astype(np.float64), y=b.y.astype(np.float64), y_raw=b.y_raw)
    M = 2
    loss = make_loss(loss_name)
    P0 = rng.normal(scale=0.3, size=(D + 1, M * C))

    def mean_loss(P):
        return ParallelLinear(np, P, M, C, loss).evaluate(b)[1].mean(axis=0).sum()

    model = ParallelLinear(np, P0.copy(), M, C, loss,
                           ParallelOptimizer(np, "sgd", P0.shape, _hypers(M, C, [1.0, 1.0], [0.0, 0.0]),
                                             use_scheduler=False, bias_lr_mult=1.0, dtype=np.float64))
    model.train_step(b)
    numeric = np.zeros_like(P0)
    h = 1e-6
    for idx in np.ndindex(P0.shape):
        up, down = P0.copy(), P0.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (mean_loss(up) - mean_loss(down)) / (2 * h)
    np.testing.assert_allclose(P0 - model.P, numeric, rtol=1e-5, atol=1e-7)


def test_sparse_with_implicit_shift_equals_dense_normalised():
    rng = np.random.default_rng(2)
    n = 120
    Xs = sp.random(n, D, density=0.4, random_state=3, format="csr", dtype=np.float64)
    y = (rng.random(n) > 0.5).astype(np.float64)
    mean, std = np.asarray(Xs.mean(axis=0)).ravel(), np.sqrt(np.asarray(Xs.multiply(Xs).mean(axis=0)).ravel())
    dense_n = (Xs.toarray() - mean) / std
    scaled = sp.csr_matrix(Xs.multiply(1 / std))
    loss = make_loss("logistic")
    P0 = rng.normal(scale=0.1, size=(D + 1, 2))
    models = []
    for sparse, transposed in ((False, False), (True, False), (True, True)):  # transposed: the GPU's X.T as CSR
        m = ParallelLinear(np, P0.copy(), 2, 1, loss,
                           ParallelOptimizer(np, "adam", P0.shape, _hypers(2, 1, [0.05, 0.1], [0.0, 0.01]),
                                             dtype=np.float64), shift=mean / std)
        for i in range(0, n, 30):
            X = scaled[i:i + 30] if sparse else dense_n[i:i + 30]
            m.train_step(PreparedBatch(X=X, y=y[i:i + 30, None], y_raw=y[i:i + 30], sparse=sparse,
                                       XT=X.T.tocsr() if transposed else None))
        models.append(m)
    np.testing.assert_allclose(models[0].P, models[1].P, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(models[2].P, models[1].P, rtol=1e-12, atol=1e-15)


def test_epoch_stats_objective_and_threshold_criterion():
    rng = np.random.default_rng(4)
    S = rng.normal(size=(500, 2)) * 3
    y = (S[:, :1] + rng.normal(size=(500, 1)) > 0).astype(np.float64)
    loss = make_loss("logistic")
    L, _ = loss(np, S, y)
    c = criterion_for("binary_classifier", "accuracy", "binary_classification_cross_entropy_objective")
    stats = EpochStats(np, 2, c, binary=True)
    stats.add(S[:250], y[:250], L[:250])
    stats.add(S[250:], y[250:], L[250:])
    np.testing.assert_allclose(stats.objective(), L.mean(axis=0))
    values, thresholds = stats.criterion_values()
    best_possible = max(np.mean((S[:, 0] > t) == (y[:, 0] > 0)) for t in np.unique(S[:, 0]))
    assert values[0] == pytest.approx(best_possible, abs=0.01)
    assert values[0] > values[1]  # model 1's scores are independent of the labels
