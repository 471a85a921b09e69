"""Threshold tuning (exact and streamed), selection criteria, early stopping."""
from __future__ import annotations

import numpy as np
import pytest

from smlocal.algorithms.linear_learner.selection import (EarlyStopping, ThresholdHistogram, criterion_for, metric_from_counts,
                                             tune_threshold)

OBJ = "binary_classification_cross_entropy_objective"


def _brute_force(scores, labels, c):
    """Try every threshold (each score, and below the minimum) with the rule score > t."""
    best_t, best_v = None, -np.inf
    for t in np.concatenate([np.unique(scores)[::-1], [scores.min() - 1]]):
        pred = scores > t
        tp, fp = np.sum(pred & labels), np.sum(pred & ~labels)
        v = metric_from_counts(np.array([tp]), np.array([fp]), labels.sum(), (~labels).sum(), c)[0]
        if v > best_v:
            best_t, best_v = t, v
    return best_t, max(best_v, 0.0)


@pytest.mark.parametrize("criteria", ["accuracy", "f_beta", "f1", "precision_at_target_recall",
                                      "recall_at_target_precision"])
def test_tuned_threshold_is_the_best_one(criteria):
    rng = np.random.default_rng(0)
    labels = rng.random(400) < 0.3
    scores = np.round(1 / (1 + np.exp(-(labels * 1.5 + rng.normal(size=400)))), 3).astype(np.float32)  # ties
    c = criterion_for("binary_classifier", criteria, OBJ, beta=0.5, target_recall=0.7, target_precision=0.6)
    threshold, value = tune_threshold(scores, labels, c)
    t_ref, v_ref = _brute_force(scores, labels, c)
    assert value == pytest.approx(v_ref)
    pred = scores > threshold
    tp, fp = np.sum(pred & labels), np.sum(pred & ~labels)
    achieved = metric_from_counts(np.array([tp]), np.array([fp]), labels.sum(), (~labels).sum(), c)[0]
    assert achieved == pytest.approx(v_ref)
    if criteria == "precision_at_target_recall":
        assert tp / labels.sum() >= 0.7
    if criteria == "recall_at_target_precision":
        assert tp / max(tp + fp, 1) >= 0.6


def test_threshold_is_a_score_and_separable_data_is_perfect():
    scores = np.array([0.1, 0.2, 0.35, 0.4, 0.9], np.float32)
    labels = np.array([0, 0, 0, 1, 1])
    c = criterion_for("binary_classifier", "accuracy", OBJ)
    threshold, value = tune_threshold(scores, labels, c)
    assert value == 1.0 and threshold == pytest.approx(0.375)


def test_histogram_matches_exact_tuning_per_model():
    rng = np.random.default_rng(1)
    n, M = 3000, 3
    y = (rng.random((n, 1)) < 0.4).astype(np.float64)
    S = np.hstack([y * k + rng.normal(size=(n, 1)) * 2 for k in (0.5, 2.0, 4.0)])
    for criteria in ("accuracy", "f1", "recall_at_target_precision"):
        c = criterion_for("binary_classifier", criteria, OBJ)
        h = ThresholdHistogram(np, M)
        for i in range(0, n, 700):
            h.add(S[i:i + 700], y[i:i + 700])
        values, thresholds = h.values(c)
        for m in range(M):
            _, exact_v = tune_threshold(S[:, m], y, c)
            assert values[m] == pytest.approx(exact_v, abs=0.004), (criteria, m)
            # the histogram's threshold, applied exactly, is (nearly) as good as the exact one
            pred = S[:, m] > thresholds[m]
            tp, fp = np.sum(pred & (y[:, 0] > 0)), np.sum(pred & (y[:, 0] == 0))
            applied = max(metric_from_counts(np.array([tp]), np.array([fp]), y.sum(), n - y.sum(), c)[0], 0)
            assert applied == pytest.approx(exact_v, abs=0.004)
        assert values[2] > values[1] > values[0]


def test_criteria_kinds():
    assert criterion_for("regressor", "accuracy", "mse_objective").kind == "objective"
    assert criterion_for("multiclass_classifier", "f1", "m").name == "m"
    c = criterion_for("binary_classifier", "loss_function", OBJ, loss="hinge_loss")
    assert (c.kind, c.maximize) == ("objective", False)
    c = criterion_for("binary_classifier", "cross_entropy_loss", "hinge", loss="hinge_loss")
    assert (c.kind, c.name) == ("cross_entropy", OBJ)
    c = criterion_for("binary_classifier", "accuracy", OBJ)
    assert (c.kind, c.name, c.maximize) == ("threshold", "sampled_accuracy", True)
    assert c.best_index(np.array([0.5, np.nan, 0.7])) == 2


def test_early_stopping_patience_and_relative_tolerance():
    es = EarlyStopping(patience=2, tolerance=0.01, maximize=False)
    assert es.update(1.0)  # first epoch
    assert es.update(0.9)  # 10 % better
    assert not es.update(0.895)  # 0.6 % better: below tolerance
    assert es.best == 0.895 and not es.should_stop
    assert not es.update(0.9)
    assert es.should_stop
    acc = EarlyStopping(patience=1, tolerance=0.001, maximize=True)
    acc.update(0.9)
    assert acc.update(0.95) and not acc.should_stop
    assert not acc.update(0.95) and acc.should_stop
    restored = EarlyStopping(2, 0.01, False)
    restored.load(es.state())
    assert restored.best == es.best and restored.bad_epochs == es.bad_epochs
