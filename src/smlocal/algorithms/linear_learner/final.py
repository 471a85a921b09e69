"""Linear learner's final step: the chosen model's threshold, its validation and test metrics, and the
saved ``model/model_<host>``.

For binary classifiers with a threshold criterion the decision threshold is tuned on up to
``num_calibration_samples`` validation records (train records without a validation channel). The saved
model has the scaler folded into its weights, so it acts on raw features and gives scores in the
label's units, as the built-in's models do; only the first host writes it.
"""
from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from smlocal.algorithms.linear_learner.config import BINARY, MULTICLASS, REGRESSOR, LLConfig
from smlocal.algorithms.linear_learner.context import Training
from smlocal.algorithms.linear_learner.data import BatchSource
from smlocal.algorithms.linear_learner.metrics import Metric, binary_metrics, multiclass_metrics, regression_metrics
from smlocal.algorithms.linear_learner.model import ParallelLinear
from smlocal.algorithms.linear_learner.scaler import Scaler
from smlocal.algorithms.linear_learner.selection import tune_threshold
from smlocal.arrays import to_numpy

Collected = tuple[np.ndarray, np.ndarray, float]  # served scores (n, C), raw labels, mean objective


def finalize(training: Training) -> None:
    """Calibrate, report the final metrics, and save the best model of all epochs."""
    fin_start = time.time()
    cfg, state, sources, log = training.cfg, training.state, training.sources, training.job.log
    best, criterion, xp = state.best, training.objective.criterion, training.arrays.xp
    single = ParallelLinear(xp, xp.asarray(best.block), 1, cfg.outputs, training.objective.train_loss,
                            shift=state.scaler.shift)
    val = _collect(training, sources["validation"], single) if "validation" in sources else None
    threshold = _threshold(training, single, val)
    if val is not None:
        _report(training, "validation", _final_metrics(training, *val, threshold))
    chosen = state.spread.describe(best.model, cfg.optimizer,
                                   with_pos_weight=cfg.positive_example_weight_mult == "auto")
    log.info(f"Best model found for hyperparameters: {json.dumps(chosen)}")
    log.info(f"Selected model {best.model} of epoch {best.epoch} ({criterion.name}={best.value!r})")
    if "test" in sources:
        _report(training, "test", _final_metrics(training, *_collect(training, sources["test"], single), threshold))
    d = best.block.shape[0] - 1
    w_raw, b_raw = state.scaler.fold(best.block[:d], best.block[d])
    ser_start = time.time()
    _save_model(training, w_raw, b_raw, threshold)
    now = time.time()
    training.job.reporter.metrics({"finalize.time": (ser_start - fin_start) * 1000.0,
                                   "model.serialize.time": (now - ser_start) * 1000.0,
                                   "totaltime": (now - training.job.started) * 1000.0}, fin_start, now)


def _threshold(training: Training, single: ParallelLinear, val: Collected | None) -> float:
    """The decision threshold: tuned for a binary threshold criterion, else the loss's default."""
    cfg, criterion = training.cfg, training.objective.criterion
    threshold = 0.0 if cfg.loss == "hinge_loss" else 0.5
    if cfg.predictor_type != BINARY or criterion.kind != "threshold":
        return threshold
    n = cfg.num_calibration_samples
    if val is not None:
        cal_scores, cal_labels = val[0][:n], val[1][:n]
    else:
        cal_scores, cal_labels, _ = _collect(training, training.sources["train"], single, limit=n)
    threshold, value = tune_threshold(cal_scores[:, 0], cal_labels, criterion)
    training.job.log.info(f"Calibrated the decision threshold on {len(cal_labels)} "
                          f"{'validation' if val is not None else 'train'} records: threshold={threshold!r}, "
                          f"{criterion.criteria}={value!r}")
    return threshold


def _collect(training: Training, source: BatchSource, single: ParallelLinear, limit: int | None = None) -> Collected:
    """The chosen model's served scores (n, C), the raw labels, and its mean objective over a pass
    (or over the first ``limit`` rows)."""
    scores, labels, loss_sum, rows = [], [], 0.0, 0
    batches = source.prepared_pass()
    try:
        for batch in batches:
            Sv, L = single.evaluate(batch)
            s = to_numpy(Sv).reshape(len(batch), -1).astype(np.float64)
            y, Lh = batch.y_raw, to_numpy(L).reshape(-1).astype(np.float64)
            if limit is not None and rows + len(y) > limit:
                keep = limit - rows
                s, y, Lh = s[:keep], y[:keep], Lh[:keep]
            scores.append(s)
            labels.append(y)
            loss_sum += float(Lh.sum())
            rows += len(y)
            if limit is not None and rows >= limit:
                break
    finally:
        batches.close()
    raw = np.concatenate(scores) if scores else np.zeros((0, training.cfg.outputs))
    y = np.concatenate(labels) if labels else np.zeros(0, dtype=np.float32)
    cluster = training.cluster
    if cluster.size > 1 and training.job.env.channels[source.name].distribution == "ShardedByS3Key":
        raw, y = cluster.gather_rows(raw), cluster.gather_rows(y)  # every host's shard, host order
        loss_sum, rows = (float(v) for v in cluster.allreduce_sum(np.array([loss_sum, rows], np.float64)))
        if limit is not None:
            raw, y = raw[:limit], y[:limit]
    served = link(raw, training.cfg, training.state.scaler)
    return served, y, loss_sum / max(rows, 1)


def _final_metrics(training: Training, scores: np.ndarray, labels: np.ndarray, mean_loss: float,
                   threshold: float) -> list[Metric]:
    cfg = training.cfg
    objective = (training.objective.name, mean_loss * training.objective.factor)
    if cfg.predictor_type == BINARY:
        return binary_metrics(scores[:, 0], labels, threshold, cfg.f_beta, objective)
    if cfg.predictor_type == MULTICLASS:
        return multiclass_metrics(scores, labels, cfg.num_classes, cfg.accuracy_top_k, cfg.f_beta, objective)
    return regression_metrics(scores[:, 0], labels, objective)


def _report(training: Training, split: str, metrics: list[Metric]) -> None:
    for name, value, kind in metrics:
        training.job.reporter.score(split, name, value)
        training.job.reporter.quality(split, name, value, kind)


def _save_model(training: Training, weight: np.ndarray, bias: np.ndarray, threshold: float) -> None:
    """``model/model_<host>`` on the first host: the built-in's linear learner model file."""
    from smlocal.artifacts.files import atomic_write_bytes
    from smlocal.artifacts.linear_learner import LinearLearnerModel, dumps_linear_learner

    cfg, state = training.cfg, training.state
    artifact = LinearLearnerModel(
        weight=weight.astype(np.float32), bias=bias.reshape(1, cfg.outputs).astype(np.float32),
        predictor_type=cfg.predictor_type, threshold=threshold, loss_type=cfg.loss,
        metrics_params=metrics_params(cfg, threshold, float(state.spread.pos_weight[state.best.model]),
                                      state.class_weights))
    if training.cluster.is_first:  # one model for the job: model_algo-1
        path = atomic_write_bytes(training.job.env.model_file, dumps_linear_learner(artifact))
        training.job.log.info(f"Saved model to \"{path}\"")


def link(raw: np.ndarray, cfg: LLConfig, scaler: Scaler) -> np.ndarray:
    """Linear outputs (n, C) in normalised space -> the served score: softmax probabilities (multiclass),
    the sigmoid (binary; the raw margin with hinge loss), the label's units (regressor), as the
    SageMaker developer guide's "Linear Learner Response Formats" describe them."""
    if cfg.predictor_type == MULTICLASS:
        z = raw - raw.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    if cfg.predictor_type == BINARY:
        if cfg.loss == "hinge_loss":
            return raw
        return np.exp(-np.logaddexp(0.0, -raw))
    return raw * scaler.label_std + scaler.label_mean


def metrics_params(cfg: LLConfig, threshold: float, pos_weight: float, class_weights: Any) -> dict[str, Any]:
    """``additional-params.json``'s ``metrics_params``, keys in the order of the built-in's 2023 model files."""
    eps = cfg.loss.startswith("eps_insensitive")
    return {
        "quantile": cfg.quantile if cfg.loss == "quantile_loss" else None,
        "huber_delta": cfg.huber_delta if cfg.loss == "huber_loss" else None,
        "margin": cfg.margin if cfg.loss == "hinge_loss" else None,
        "loss_insensitivity": cfg.loss_insensitivity if eps else None,
        "eps_insensitive_loss_type": cfg.loss.split("_")[2] if eps else None,
        "accuracy_top_k": cfg.accuracy_top_k,
        "f_beta": cfg.f_beta if cfg.predictor_type != REGRESSOR else None,
        "positive_example_weight_mult": pos_weight if cfg.predictor_type == BINARY else 1.0,
        "class_weights": None if class_weights is None else [float(c) for c in class_weights],
        "threshold": threshold,
    }
