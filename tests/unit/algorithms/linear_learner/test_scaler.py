"""The scaler: moments from the sample, and folding it into raw-feature weights."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.algorithms.linear_learner.scaler import Scaler, describe, fit_scaler


def _data(rng, n=400, d=6):
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 50, d) + rng.uniform(-100, 100, d)
    X[:, 2] = 7.0  # a constant feature: std 0
    return X


def test_moments_and_flags():
    rng = np.random.default_rng(0)
    X, y = _data(rng), rng.normal(size=400) * 3 + 5
    s = fit_scaler([X[:100], X[100:]], y, normalize_data=True, unbias_data=True, normalize_label=True,
                   unbias_label=True)
    np.testing.assert_allclose(s.mean, X.mean(0))
    expected_std = X.std(0)
    expected_std[2] = 1.0
    np.testing.assert_allclose(s.std, expected_std)
    assert s.label_mean == pytest.approx(y.mean()) and s.label_std == pytest.approx(y.std())
    off = fit_scaler([X], y, normalize_data=False, unbias_data=False, normalize_label=False, unbias_label=False)
    assert np.all(off.mean == 0) and np.all(off.std == 1) and (off.label_mean, off.label_std) == (0.0, 1.0)


def test_sparse_moments_match_dense():
    dense = sp.random(300, 8, density=0.3, random_state=2, format="csr") * 10
    a = fit_scaler([dense], None, normalize_data=True, unbias_data=True, normalize_label=False, unbias_label=False)
    b = fit_scaler([dense.toarray()], None, normalize_data=True, unbias_data=True, normalize_label=False,
                   unbias_label=False)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-9)


@pytest.mark.parametrize("label_scaling", [False, True])
@pytest.mark.parametrize("shift", [False, True])
def test_fold_gives_identical_raw_predictions(label_scaling, shift):
    rng = np.random.default_rng(3)
    X = _data(rng)
    y = rng.normal(size=len(X)) * 20 + 300
    s = fit_scaler([X], y, normalize_data=True, unbias_data=shift, normalize_label=label_scaling,
                   unbias_label=label_scaling)
    W = rng.normal(size=(X.shape[1], 3))
    b = rng.normal(size=3)
    normalised_space = ((X - s.mean) / s.std) @ W + b
    expected = normalised_space * s.label_std + s.label_mean
    w_raw, b_raw = s.fold(W, b)
    np.testing.assert_allclose(X @ w_raw + b_raw, expected, rtol=1e-9, atol=1e-9)
    # and through the float32 path used for training batches
    np.testing.assert_allclose(s.transform(X.astype(np.float32)), (X - s.mean) / s.std, rtol=1e-4, atol=1e-4)


def test_state_round_trip_and_description():
    s = Scaler(np.array([1.0, 2.0]), np.array([3.0, 4.0]), 5.0, 6.0)
    t = Scaler.from_arrays(s.arrays())
    assert np.all(t.mean == s.mean) and np.all(t.std == s.std) and (t.label_mean, t.label_std) == (5.0, 6.0)
    text = describe(s, regression=True)
    assert text.startswith("{'stdev_weight': ") and "<NDArray 2 @cpu(0)>" in text and "'mean_label'" in text
    assert "'stdev_label': None" in describe(s, regression=False)
