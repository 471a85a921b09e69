"""The final validation/test metrics of the chosen model, named as the built-in's logs name them.

Each function returns ``[(name, value, kind)]`` in the built-in's order, ``kind`` being ``"loss"`` or
``"score"`` (the ``<loss>``/``<score>`` tag of the ``#quality_metric`` lines). scikit-learn computes
the classification metrics; a metric that is undefined on the data (ROC AUC with one class present) is
left out rather than reported as NaN, which SageMaker's metric regexes could not parse.

scikit-learn is imported when a metric is computed, not with the module: ``sklearn.metrics`` brings
scipy.stats (and pandas where installed), over 100 MB of resident memory that a job without a
validation or test channel never needs.
"""
from __future__ import annotations

import numpy as np

Metric = tuple[str, float, str]


def f_name(prefix: str, beta: float) -> str:
    return f"{prefix}_f_{beta:.3f}"


def binary_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float, beta: float,
                   objective: tuple[str, float]) -> list[Metric]:
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

    y = (np.asarray(labels).ravel() > 0.5).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64).ravel()
    pred = (s > threshold).astype(np.int64)
    precision, recall, fbeta, _ = precision_recall_fscore_support(
        y, pred, beta=beta, average="binary", pos_label=1, zero_division=0)
    out: list[Metric] = [
        (objective[0], objective[1], "loss"),
        ("binary_classification_accuracy", accuracy_score(y, pred), "score"),
        (f_name("binary", beta), fbeta, "score"),
        ("precision", precision, "score"),
        ("recall", recall, "score"),
    ]
    if 0 < y.sum() < y.size:
        out.append(("roc_auc_score", roc_auc_score(y, s), "score"))
    return [(n, float(v), k) for n, v, k in out]


def dcg(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean discounted cumulative gain of the true class's rank (one relevant item per row)."""
    true = probs[np.arange(len(y)), y]
    rank = 1 + (probs > true[:, None]).sum(axis=1)
    return float(np.mean(1.0 / np.log2(1.0 + rank)))


def multiclass_metrics(probs: np.ndarray, labels: np.ndarray, num_classes: int, top_k: int, beta: float,
                       objective: tuple[str, float]) -> list[Metric]:
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support, top_k_accuracy_score

    y = np.asarray(labels).ravel().astype(np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    pred = probs.argmax(axis=1)
    classes = np.arange(num_classes)
    precision, recall, fbeta, _ = precision_recall_fscore_support(
        y, pred, beta=beta, labels=classes, average="macro", zero_division=0)
    if top_k >= num_classes:
        top = 1.0
    else:
        top = top_k_accuracy_score(y, probs, k=top_k, labels=classes)
    out = [
        (objective[0], objective[1], "loss"),
        ("multiclass_accuracy", accuracy_score(y, pred), "score"),
        (f"multiclass_top_k_accuracy_{top_k}", top, "score"),
        ("dcg", dcg(probs, y), "score"),
        ("macro_recall", recall, "score"),
        ("macro_precision", precision, "score"),
        (f_name("macro", beta), fbeta, "score"),
    ]
    return [(n, float(v), k) for n, v, k in out]


def regression_metrics(pred: np.ndarray, labels: np.ndarray, objective: tuple[str, float]) -> list[Metric]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.asarray(pred, dtype=np.float64).ravel()
    mse = mean_squared_error(y, p)
    out = [
        (objective[0], objective[1], "loss"),
        ("mse", mse, "loss"),
        ("rmse", np.sqrt(mse), "loss"),
        ("absolute_loss", mean_absolute_error(y, p), "loss"),
    ]
    return [(n, float(v), k) for n, v, k in out]
