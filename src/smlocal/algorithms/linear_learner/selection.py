"""Model selection: binary decision thresholds, the per-epoch selection criterion, early stopping.

``binary_classifier_model_selection_criteria`` (SageMaker developer guide, "Linear Learner Hyperparameters"):

- ``accuracy``, ``f_beta`` (``f1`` = beta 1), ``precision_at_target_recall`` and
  ``recall_at_target_precision`` pick the decision threshold that maximises them;
- ``loss_function`` and ``cross_entropy_loss`` select by a loss and keep the default threshold.

A threshold ``t`` predicts 1 for ``score > t``. ``tune_threshold`` is exact on a sample (the final
calibration of the chosen model); ``ThresholdHistogram`` is its streaming form for every parallel
model at once (the per-epoch ``sampled_<criterion>`` values), exact up to the bin width.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from smlocal.arrays import to_numpy


@dataclass(frozen=True)
class Criterion:
    """How to rank the models: a metric name for the log, its direction, and what it is computed from."""

    name: str  # as logged: criteria=<name>
    maximize: bool
    kind: str  # "threshold" | "objective" | "cross_entropy"
    criteria: str = "loss_function"
    beta: float = 1.0
    target_recall: float = 0.8
    target_precision: float = 0.8

    def better(self, a: float, b: float) -> bool:
        return a > b if self.maximize else a < b

    def best_index(self, values: np.ndarray) -> int:
        values = np.where(np.isfinite(values), values, -np.inf if self.maximize else np.inf)
        return int(np.argmax(values) if self.maximize else np.argmin(values))


def criterion_for(predictor_type: str, criteria: str, objective: str, *, loss: str = "logistic",
                  beta: float = 1.0, target_recall: float = 0.8, target_precision: float = 0.8) -> Criterion:
    """Regressors and multiclass classifiers are ranked by their objective loss (the criteria apply to
    binary classifiers only, SageMaker developer guide, "Linear Learner Hyperparameters")."""
    if predictor_type != "binary_classifier" or criteria == "loss_function" or (
            criteria == "cross_entropy_loss" and loss == "logistic"):
        return Criterion(objective, False, "objective")
    if criteria == "cross_entropy_loss":
        return Criterion("binary_classification_cross_entropy_objective", False, "cross_entropy")
    name = "f_beta" if criteria == "f1" else criteria
    return Criterion(f"sampled_{name}", True, "threshold", criteria, 1.0 if criteria == "f1" else beta,
                     target_recall, target_precision)


def metric_from_counts(tp, fp, pos, neg, c: Criterion):
    """The criterion for every candidate cut (arrays of true/false positives among predicted positives)."""
    tp = np.asarray(tp, dtype=np.float64)
    fp = np.asarray(fp, dtype=np.float64)
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if c.criteria == "accuracy":
            return (tp + neg - fp) / np.maximum(pos + neg, 1)
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
        recall = np.where(pos > 0, tp / np.maximum(pos, 1), 0.0)
        if c.criteria in ("f_beta", "f1"):
            b2 = c.beta * c.beta
            denom = (1 + b2) * tp + b2 * (pos - tp) + fp
            return np.where(denom > 0, (1 + b2) * tp / np.maximum(denom, 1e-300), 0.0)
        if c.criteria == "precision_at_target_recall":
            return np.where(recall >= c.target_recall, precision, -1.0 + precision * 1e-6)
        if c.criteria == "recall_at_target_precision":
            return np.where(precision >= c.target_precision, recall, -1.0 + precision * 1e-6)
    raise ValueError(f"not a threshold criterion: {c.criteria}")


def _reported(value: float) -> float:
    # "-1 + tiny" marks a cut that misses the target: report 0 for it, as nothing met the target
    return max(float(value), 0.0)


def tune_threshold(scores: np.ndarray, labels: np.ndarray, c: Criterion) -> tuple[float, float]:
    """The threshold maximising ``c`` on a sample, and the criterion's value there."""
    scores = np.asarray(scores, dtype=np.float32).ravel()
    labels = np.asarray(labels).ravel() > 0.5
    if scores.size == 0:
        return 0.5, 0.0
    uniq, inverse = np.unique(-scores, return_inverse=True)  # descending scores
    values = -uniq
    pos_per = np.bincount(inverse, weights=labels, minlength=len(values))
    all_per = np.bincount(inverse, minlength=len(values))
    tp = np.concatenate([[0.0], np.cumsum(pos_per)])
    fp = np.concatenate([[0.0], np.cumsum(all_per - pos_per)])
    P, N = tp[-1], fp[-1]
    metric = metric_from_counts(tp, fp, P, N, c)
    j = int(np.argmax(metric))
    # cut j predicts the j highest distinct scores: the threshold lies halfway to the next score, so that a
    # score recomputed with float32 rounding on raw features lands on the same side
    if j == 0:
        threshold = values[0]
    elif j < len(values):
        threshold = np.float32((np.float64(values[j - 1]) + np.float64(values[j])) / 2)
    else:
        threshold = np.nextafter(values[-1], np.float32(-np.inf))
    return float(threshold), _reported(metric[j])


class ThresholdHistogram:
    """Per-model label counts over score bins, for threshold criteria on streamed data.

    The bins are uniform in the linear output (the logit for logistic loss) over [-LIMIT, LIMIT]; outputs
    beyond fall into the end bins. Counts are laid out [model][label][bin], so one integer ``bincount``
    counts everything at once, run once ``PENDING`` indices of any number of batches are gathered.
    """

    LIMIT = 12.0
    PENDING = 1 << 20  # bin indices gathered before one bincount: a bincount costs its minlength too

    def __init__(self, xp: Any, num_models: int, bins: int = 2400):
        self.xp, self.M, self.B = xp, num_models, bins
        self._counts = xp.zeros(num_models * bins * 2, dtype=xp.int64)
        # float32 holds the flat index exactly below 2**22; beyond, compute it in float64
        self._dtype = xp.float32 if num_models * bins * 2 < 2 ** 22 else xp.float64
        self._offsets = xp.asarray((np.arange(num_models) * (2 * bins) + bins // 2).reshape(1, -1), self._dtype)
        self._scale = bins / (2 * self.LIMIT)
        self._pending = xp.empty(self.PENDING, dtype=xp.int32 if self._counts.size < 2 ** 31 else xp.int64)
        self._filled = 0

    @property
    def counts(self) -> Any:
        """(M * 2 * B,) int64 counts of every row added so far."""
        self._flush()
        return self._counts

    @counts.setter
    def counts(self, value: Any) -> None:
        self._flush()
        self._counts = value

    def add(self, S: Any, y: Any) -> None:
        """``S`` (n, M) linear outputs, ``y`` (n, 1) labels in {0, 1}."""
        xp, half = self.xp, self.B // 2
        pos = xp.multiply(S, self._scale, dtype=self._dtype)
        xp.maximum(pos, -half, out=pos)
        xp.minimum(pos, half - 1, out=pos)
        pos += self._offsets
        pos += y.astype(self._dtype) * self.B
        pos = pos.ravel()
        if self._filled + pos.size > self._pending.size:
            self._flush()
        if pos.size > self._pending.size:
            self._counts += xp.bincount(pos.astype(xp.int64), minlength=self._counts.shape[0])
            return
        # the cast truncates, as astype does: every index is >= 0
        xp.copyto(self._pending[self._filled:self._filled + pos.size], pos, casting="unsafe")
        self._filled += pos.size

    def _flush(self) -> None:
        if self._filled:
            self._counts += self.xp.bincount(self._pending[:self._filled], minlength=self._counts.shape[0])
            self._filled = 0

    def edges(self) -> np.ndarray:
        """The linear-output threshold of each cut (cut j predicts the top j bins)."""
        return self.LIMIT - np.arange(self.B + 1) * (2 * self.LIMIT / self.B)

    def values(self, c: Criterion) -> tuple[np.ndarray, np.ndarray]:
        """(criterion value, threshold on the linear output) for every model."""
        counts = to_numpy(self.counts).reshape(self.M, 2, self.B)[:, :, ::-1].astype(np.float64)
        zero = np.zeros((self.M, 1))
        fp = np.concatenate([zero, np.cumsum(counts[:, 0, :], axis=1)], axis=1)
        tp = np.concatenate([zero, np.cumsum(counts[:, 1, :], axis=1)], axis=1)
        metric = metric_from_counts(tp, fp, tp[:, -1:], fp[:, -1:], c)
        j = np.argmax(metric, axis=1)
        best = np.maximum(metric[np.arange(self.M), j], 0.0)
        return best, self.edges()[j]


class EarlyStopping:
    """Stops after ``patience`` epochs without a relative improvement above ``tolerance``."""

    def __init__(self, patience: int, tolerance: float, maximize: bool):
        self.patience, self.tolerance, self.maximize = patience, tolerance, maximize
        self.best: float | None = None
        self.bad_epochs = 0

    def update(self, value: float) -> bool:
        """Record an epoch's criterion; True when it improved significantly (the bad-epoch count resets)."""
        value = float(value)
        if self.best is None or not np.isfinite(self.best):
            self.best, self.bad_epochs = value, 0
            return True
        gain = (value - self.best) if self.maximize else (self.best - value)
        relative = gain / max(abs(self.best), 1e-12)
        if gain > 0:
            self.best = value
        if relative > self.tolerance:
            self.bad_epochs = 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def state(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load(self, state: dict) -> None:
        self.best, self.bad_epochs = state.get("best"), int(state.get("bad_epochs", 0))
