"""SGD (+momentum), Adam and RMSProp for all parallel models in one set of array operations.

The parameters of every model are stacked in one matrix ``P`` of shape (d + 1, K): rows 0..d-1 are the
weights, the last row is the bias; K = num_models * outputs columns. Per-model hyperparameters (learning
rate, wd, l1, momentum, scheduler) are vectors over the K columns that broadcast across rows, so one
update serves all models: there is no loop over models. Row multipliers carry ``bias_lr_mult`` and
``bias_wd_mult`` for the bias row (``use_bias=false`` freezes it at 0).

Conventions follow MXNet's optimizers, which the built-in uses: weight decay is added to the gradient
(``g + wd * w``); the scheduler is MXNet's FactorScheduler (lr * factor ** ((t - 1) // step), never
below ``lr_scheduler_minimum_lr`` once it decays). L1 is applied as a proximal soft-threshold after
each step with the coordinate's effective step size, so l1 produces exact zeros.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ADAM_EPS = 1e-8
RMSPROP_GAMMA = 0.9  # MXNet RMSProp's default decay (gamma1)


@dataclass
class ModelHypers:
    """Per-column hyperparameter vectors (length K, float64 on the host)."""

    lr: np.ndarray
    wd: np.ndarray
    l1: np.ndarray
    momentum: np.ndarray
    step: np.ndarray  # scheduler step (updates between decays)
    factor: np.ndarray
    min_lr: np.ndarray


def scheduled_lr(h: ModelHypers, t: int, use_scheduler: bool) -> np.ndarray:
    """Learning rate of every column at update ``t`` (1-based)."""
    if not use_scheduler:
        return h.lr.copy()
    decays = (t - 1) // h.step
    decayed = np.maximum(h.lr * h.factor ** decays, h.min_lr)
    return np.where(decays > 0, decayed, h.lr)


def next_lr_change(h: ModelHypers, t: int, use_scheduler: bool) -> float:
    """The first update after ``t`` at which some column's scheduled rate can change (inf: never)."""
    if not use_scheduler or h.step.size == 0:
        return np.inf
    return float(np.min(((t - 1) // h.step + 1) * h.step + 1))


class ParallelOptimizer:
    """Updates ``P`` (d + 1, K) in place from its gradient."""

    def __init__(self, xp: Any, kind: str, shape: tuple[int, int], hypers: ModelHypers, *,
                 use_scheduler: bool = True, bias_lr_mult: float = 10.0, bias_wd_mult: float = 0.0,
                 use_bias: bool = True, beta_1: float = 0.9, beta_2: float = 0.999, dtype=np.float32):
        if kind not in ("sgd", "adam", "rmsprop"):
            raise ValueError(f"unknown optimizer {kind!r}")
        self.xp, self.kind, self.hypers, self.use_scheduler = xp, kind, hypers, use_scheduler
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.dtype = dtype
        rows = shape[0]
        lr_rows = np.ones((rows, 1))
        lr_rows[-1] = bias_lr_mult if use_bias else 0.0
        wd_rows = np.ones((rows, 1))
        wd_rows[-1] = bias_wd_mult
        self._lr_rows = lr_rows
        self._WD = self._dev(wd_rows * hypers.wd[None, :]) if np.any(hypers.wd) else None
        l1 = np.zeros((rows, 1)) + hypers.l1[None, :]
        l1[-1] = 0.0  # the bias is not L1-regularised
        self._L1 = self._dev(l1) if np.any(hypers.l1) else None
        self._MOM = self._dev(hypers.momentum[None, :]) if np.any(hypers.momentum) else None
        self.t = 0
        self.state: dict[str, Any] = {}
        if kind == "adam":
            self.state = {"m": xp.zeros(shape, dtype), "v": xp.zeros(shape, dtype)}
        elif kind == "rmsprop":
            self.state = {"n": xp.zeros(shape, dtype)}
        elif self._MOM is not None:
            self.state = {"mom": xp.zeros(shape, dtype)}
        self._lr_key: bytes | None = None
        self._LR = None
        self._lr_next = 0.0  # the update at which the rates must be recomputed

    def _dev(self, a: np.ndarray) -> Any:
        return self.xp.asarray(np.asarray(a, dtype=self.dtype))

    def _lr_matrix(self) -> Any:
        # the scheduled rates change only every lr_scheduler_step updates: rebuild the matrix then
        if self.t < self._lr_next:
            return self._LR
        lr = scheduled_lr(self.hypers, self.t, self.use_scheduler)
        self._lr_next = next_lr_change(self.hypers, self.t, self.use_scheduler)
        key = lr.tobytes()
        if key != self._lr_key:
            self._lr_key, self._LR = key, self._dev(self._lr_rows * lr[None, :])
        return self._LR

    def step(self, P: Any, g: Any) -> None:
        """One update of every model. ``g`` (same shape as ``P``) is consumed (modified)."""
        xp = self.xp
        self.t += 1
        LR = self._lr_matrix()
        if self._WD is not None:
            g += self._WD * P
        if self.kind == "adam":
            b1, b2 = self.beta_1, self.beta_2
            m, v = self.state["m"], self.state["v"]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            correction = float(np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t))
            eta = (LR * correction) / (xp.sqrt(v) + ADAM_EPS)
            P -= eta * m
        elif self.kind == "rmsprop":
            n = self.state["n"]
            n *= RMSPROP_GAMMA
            n += (1 - RMSPROP_GAMMA) * (g * g)
            eta = LR / xp.sqrt(n + ADAM_EPS)
            P -= eta * g
        else:
            eta = LR
            if self._MOM is not None:
                mom = self.state["mom"]
                mom *= self._MOM
                mom -= LR * g
                P += mom
            else:
                P -= LR * g
        if self._L1 is not None:
            # proximal step for l1: shrink towards 0 by the coordinate's step size, clamp at 0
            P[...] = xp.sign(P) * xp.maximum(xp.abs(P) - eta * self._L1, 0)

    def state_arrays(self) -> dict[str, Any]:
        return dict(self.state)

    def load_state(self, t: int, arrays: dict[str, Any]) -> None:
        self.t = int(t)
        self._lr_next = 0.0
        for name, value in arrays.items():
            if name in self.state:
                self.state[name][...] = self.xp.asarray(value, dtype=self.dtype)
