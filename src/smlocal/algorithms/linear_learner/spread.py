"""The hyperparameters of the ``num_models`` parallel models.

Model 0 uses the given (or ``auto``) values; models 1.. use values spread around them, drawn by a
seeded Latin hypercube so that a small number of models still covers every range evenly:

============================  =========================================================================
learning_rate                 log-uniform in [lr / 30, lr * 3]
wd                            log-uniform in [wd / 100, wd * 10]; an explicit 0 stays 0 for every model
l1                            auto (0): half of the models 0, the rest log-uniform in [1e-6, 1e-3];
                              a positive l1: log-uniform in [l1 / 10, l1 * 10]; an explicit 0 stays 0
momentum (sgd)                auto: uniform in [0, 0.9]; an explicit value is used by every model
lr_scheduler_step             step * 2 ** U(-1, 1), rounded, >= 1
lr_scheduler_factor           1 - (1 - factor) * 2 ** U(-1, 1)
lr_scheduler_minimum_lr       minimum_lr * 10 ** U(-1, 1)
positive_example_weight_mult  auto: log-uniform between 1 and the balancing ratio (negatives/positives);
                              balanced: the ratio for every model; a number: that number
============================  =========================================================================

The optimizer and the loss are the same for every model, so one vectorised update serves them all.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smlocal.algorithms.linear_learner.config import LLConfig
from smlocal.algorithms.linear_learner.optim import ModelHypers

SEED = 20180101  # fixed: the same job trains the same models
_DIMS = ("lr", "wd", "l1", "momentum", "step", "factor", "min_lr", "pos")


@dataclass
class Spread:
    """Per-model values (length M each, float64)."""

    lr: np.ndarray
    wd: np.ndarray
    l1: np.ndarray
    momentum: np.ndarray
    step: np.ndarray
    factor: np.ndarray
    min_lr: np.ndarray
    pos_weight: np.ndarray

    @property
    def num_models(self) -> int:
        return len(self.lr)

    def columns(self, outputs: int) -> ModelHypers:
        """The vectors for all ``outputs * M`` columns (class-major layout: column c*M + m is model m)."""
        rep = lambda v: np.tile(np.asarray(v, dtype=np.float64), outputs)  # noqa: E731
        return ModelHypers(lr=rep(self.lr), wd=rep(self.wd), l1=rep(self.l1), momentum=rep(self.momentum),
                           step=rep(self.step), factor=rep(self.factor), min_lr=rep(self.min_lr))

    def describe(self, m: int, optimizer: str, with_pos_weight: bool = False) -> dict:
        """Model ``m``'s values as the built-in logs them (``Best model found for hyperparameters``)."""
        out = {"lr_scheduler_step": int(self.step[m]), "wd": float(self.wd[m]), "optimizer": optimizer,
               "lr_scheduler_factor": float(self.factor[m]), "l1": float(self.l1[m]),
               "learning_rate": float(self.lr[m]), "lr_scheduler_minimum_lr": float(self.min_lr[m])}
        if optimizer == "sgd":
            out["momentum"] = float(self.momentum[m])
        if with_pos_weight:
            out["positive_example_weight_mult"] = float(self.pos_weight[m])
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in
                ("lr", "wd", "l1", "momentum", "step", "factor", "min_lr", "pos_weight")}


def latin_hypercube(n: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points in [0, 1)^dims, one per stratum of every axis."""
    strata = np.stack([rng.permutation(n) for _ in range(dims)], axis=1)
    return (strata + rng.random((n, dims))) / max(n, 1)


def _log_between(lo: float, hi: float, u: np.ndarray) -> np.ndarray:
    return np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * u)


def spread(cfg: LLConfig, num_models: int, balance_ratio: float = 1.0, seed: int = SEED) -> Spread:
    """The per-model hyperparameters. ``balance_ratio``: negatives / positives in the scaler sample."""
    M = num_models
    u = latin_hypercube(max(M - 1, 0), len(_DIMS), np.random.default_rng(seed))
    col = {name: u[:, i] for i, name in enumerate(_DIMS)}

    def with_base(base: float, others: np.ndarray) -> np.ndarray:
        return np.concatenate([[base], others]).astype(np.float64)

    lr = with_base(cfg.learning_rate, _log_between(cfg.learning_rate / 30, cfg.learning_rate * 3, col["lr"]))
    if cfg.wd == 0:
        wd = np.zeros(M)
    else:
        wd = with_base(cfg.wd, _log_between(cfg.wd / 100, cfg.wd * 10, col["wd"]))
    if cfg.l1 > 0:
        l1 = with_base(cfg.l1, _log_between(cfg.l1 / 10, cfg.l1 * 10, col["l1"]))
    elif cfg.is_given("l1"):
        l1 = np.zeros(M)
    else:
        on = col["l1"] >= 0.5
        l1 = with_base(0.0, np.where(on, _log_between(1e-6, 1e-3, np.clip(2 * col["l1"] - 1, 0, 1)), 0.0))
    if cfg.optimizer == "sgd" and not cfg.is_given("momentum"):
        momentum = with_base(cfg.momentum, 0.9 * col["momentum"])
    else:
        momentum = np.full(M, cfg.momentum)
    two = 2.0 ** (2 * col["step"] - 1)
    step = with_base(cfg.lr_scheduler_step, np.maximum(np.rint(cfg.lr_scheduler_step * two), 1))
    factor = with_base(cfg.lr_scheduler_factor,
                       1 - (1 - cfg.lr_scheduler_factor) * 2.0 ** (2 * col["factor"] - 1))
    factor = np.clip(factor, 1e-6, 1 - 1e-9)
    min_lr = with_base(cfg.lr_scheduler_minimum_lr,
                       cfg.lr_scheduler_minimum_lr * 10.0 ** (2 * col["min_lr"] - 1))
    pew = cfg.positive_example_weight_mult
    if pew == "auto":
        ratio = max(float(balance_ratio), 1e-12)
        pos = with_base(1.0, _log_between(min(1.0, ratio), max(1.0, ratio), col["pos"]) if ratio != 1.0
                        else np.ones(M - 1))
    elif pew == "balanced":
        pos = np.full(M, float(balance_ratio))
    else:
        pos = np.full(M, float(pew))
    return Spread(lr=lr, wd=wd, l1=l1, momentum=momentum, step=step, factor=factor, min_lr=min_lr,
                  pos_weight=pos)
