"""Final metrics: the built-in's names and order, values from their definitions."""
from __future__ import annotations

import numpy as np
import pytest

from smlocal.algorithms.linear_learner.metrics import binary_metrics, dcg, multiclass_metrics, regression_metrics


def test_binary_metrics_names_and_values():
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    s = np.array([0.9, 0.2, 0.6, 0.3, 0.7, 0.1, 0.8, 0.4])
    objective = ("binary_classification_cross_entropy_objective", 0.4)
    out = binary_metrics(s, y, threshold=0.5, beta=2.0, objective=objective)
    names = [n for n, _, _ in out]
    assert names == ["binary_classification_cross_entropy_objective", "binary_classification_accuracy",
                     "binary_f_2.000", "precision", "recall", "roc_auc_score"]
    values = {n: v for n, v, _ in out}
    tp, fp, fn = 3, 1, 1  # predictions: 0.9, 0.6, 0.7, 0.8 positive
    p, r = tp / (tp + fp), tp / (tp + fn)
    assert values["binary_classification_accuracy"] == pytest.approx(6 / 8)
    assert values["precision"] == pytest.approx(p) and values["recall"] == pytest.approx(r)
    assert values["binary_f_2.000"] == pytest.approx(5 * p * r / (4 * p + r))
    assert values["roc_auc_score"] == pytest.approx(13 / 16)
    assert [k for _, _, k in out] == ["loss"] + ["score"] * 5
    # one class only: ROC AUC is undefined and left out
    assert "roc_auc_score" not in [n for n, _, _ in binary_metrics(s, np.ones(8), 0.5, 1.0, ("o", 0.0))]


def test_multiclass_metrics():
    probs = np.array([[0.7, 0.2, 0.1, 0.0], [0.1, 0.3, 0.6, 0.0], [0.3, 0.4, 0.2, 0.1], [0.1, 0.15, 0.05, 0.7]])
    y = np.array([0, 1, 1, 2])
    out = multiclass_metrics(probs, y, 4, top_k=2, beta=1.0, objective=("multiclass_cross_entropy_objective", 1.0))
    assert [n for n, _, _ in out] == ["multiclass_cross_entropy_objective", "multiclass_accuracy",
                                      "multiclass_top_k_accuracy_2", "dcg", "macro_recall", "macro_precision",
                                      "macro_f_1.000"]
    v = {n: x for n, x, _ in out}
    assert v["multiclass_accuracy"] == pytest.approx(0.5)
    assert v["multiclass_top_k_accuracy_2"] == pytest.approx(0.75)
    ranks = np.array([1, 2, 1, 4])
    assert v["dcg"] == pytest.approx(np.mean(1 / np.log2(1 + ranks)))
    assert dcg(probs, y) == v["dcg"]
    # top-k with k >= classes is 1
    assert multiclass_metrics(probs, y, 4, 4, 1.0, ("o", 0))[2] == ("multiclass_top_k_accuracy_4", 1.0, "score")


def test_regression_metrics():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.0, 5.0])
    out = regression_metrics(p, y, ("mse_objective", 0.5625))
    assert [(n, k) for n, _, k in out] == [("mse_objective", "loss"), ("mse", "loss"), ("rmse", "loss"),
                                           ("absolute_loss", "loss")]
    v = {n: x for n, x, _ in out}
    assert v["mse"] == pytest.approx(2.25 / 4) and v["rmse"] == pytest.approx(np.sqrt(2.25 / 4))
    assert v["absolute_loss"] == pytest.approx(2.5 / 4)
