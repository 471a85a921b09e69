"""The job state: how it starts from the scaler sample and survives a checkpoint."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.algorithms.linear_learner.checkpoint import STATE_FILE, fingerprint, load_state, save_state
from smlocal.algorithms.linear_learner.config import resolve
from smlocal.algorithms.linear_learner.state import Best, from_checkpoint, start_state, to_checkpoint


def test_start_state_from_a_binary_sample():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4)) * 10 + 3
    y = (rng.random(500) < 0.2).astype(np.float32)
    cfg = resolve({"predictor_type": "binary_classifier", "num_point_for_scaler": "300",
                   "positive_example_weight_mult": "balanced", "num_models": "5"})
    state = start_state(cfg, [X[:250], X[250:]], y)
    np.testing.assert_allclose(state.scaler.mean, X[:300].mean(0))  # exactly num_point_for_scaler rows
    ratio = (300 - y[:300].sum()) / y[:300].sum()
    np.testing.assert_allclose(state.spread.pos_weight, ratio)
    assert state.P.shape == (5, 5) and not state.sparse
    assert np.all(np.abs(state.P[:4]) <= 0.07) and np.all(state.P[4] == 0.0)


def test_sparse_sample_is_not_shifted_unless_asked():
    X = sp.random(200, 6, density=0.3, format="csr", random_state=1) * 5 + sp.eye(200, 6, format="csr")
    y = np.arange(200, dtype=np.float32) % 3
    cfg = resolve({"predictor_type": "multiclass_classifier", "num_classes": "3", "balance_multiclass_weights": "true"})
    state = start_state(cfg, [X], y)
    assert state.sparse and np.all(state.scaler.mean == 0) and np.any(state.scaler.std != 1)
    np.testing.assert_allclose(state.class_weights, 200 / (3 * np.bincount(y.astype(int))))
    assert state.notes and state.notes[0].startswith("Class weights:")
    forced = resolve({"predictor_type": "multiclass_classifier", "num_classes": "3", "unbias_data": "true"})
    assert np.any(start_state(forced, [X], y).scaler.mean != 0)


def test_checkpoint_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    cfg = resolve({"predictor_type": "regressor", "num_models": "3"})
    state = start_state(cfg, [rng.normal(size=(100, 4))], rng.normal(size=100).astype(np.float32))
    state.best = Best(epoch=2, model=1, value=0.25, block=rng.normal(size=(5, 1)).astype(np.float32))
    P = rng.normal(size=state.P.shape).astype(np.float32)
    opt = {"m": rng.normal(size=P.shape), "v": rng.random(P.shape)}
    meta, arrays = to_checkpoint(state, P, 77, opt, {"best": 0.25, "bad_epochs": 1}, 3, False, "abc")
    save_state(tmp_path, meta, arrays)
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]  # no temp file left behind
    back = from_checkpoint(*load_state(tmp_path))
    assert (back.epochs_done, back.stopped, back.t, back.early) == (3, False, 77, {"best": 0.25, "bad_epochs": 1})
    np.testing.assert_array_equal(back.P, P)
    np.testing.assert_array_equal(back.opt_arrays["v"], opt["v"])
    np.testing.assert_array_equal(back.best.block, state.best.block)
    assert (back.best.epoch, back.best.model, back.best.value) == (2, 1, 0.25)
    for name, value in state.spread.arrays().items():
        np.testing.assert_array_equal(getattr(back.spread, name), value)
    assert back.scaler.label_std == pytest.approx(state.scaler.label_std) and back.class_weights is None


def test_unreadable_or_missing_state_is_none(tmp_path):
    assert load_state(tmp_path) is None
    (tmp_path / STATE_FILE).write_bytes(b"not an npz")
    assert load_state(tmp_path) is None


def test_fingerprint_ignores_epochs_only():
    base = {"predictor_type": "regressor", "epochs": "4"}
    assert fingerprint(base) == fingerprint({**base, "epochs": "9"})
    assert fingerprint(base) != fingerprint({**base, "wd": "0.1"})
