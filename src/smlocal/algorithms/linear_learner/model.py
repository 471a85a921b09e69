"""All parallel linear models as one matrix, trained with one matrix product per mini-batch.

``P`` (d + 1, K) holds every model: K = outputs * num_models columns, class-major (column c*M + m is
class c of model m, so softmax reductions over classes run along contiguous rows of M models); the last
row is the bias. A mini-batch's scores for all models are ``X @ P[:d] +
P[d]`` (one GEMM, or one CSR x dense product for sparse data) and the weight gradient of all models is
``X.T @ G`` (a second one). Losses, weighting and the optimizer are element-wise over (n, K) or
(d + 1, K) arrays, so the cost of a step barely depends on the number of models.

Features arrive normalised (``ll_data.Preparer``). Sparse features cannot be shifted without losing
sparsity, so when the scaler shifts them the shift ``mean / std`` is applied algebraically:
``S = X_s @ W + (b - shift @ W)`` and ``dW = X_s.T @ G - shift ⊗ sum(G)``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from smlocal.algorithms.linear_learner.background import OrderedWorker
from smlocal.algorithms.linear_learner.losses import Logistic, Loss
from smlocal.algorithms.linear_learner.optim import ParallelOptimizer
from smlocal.algorithms.linear_learner.selection import Criterion, ThresholdHistogram
from smlocal.arrays import to_numpy

INIT_SEED = 7
STATS_GROUP = 8  # batches handed to the statistics thread at once: one hand-off costs tens of microseconds
STATS_GROUP_BYTES = 16 << 20  # a group of scores up to this size is summed as one array
STATS_THREAD_ENV = "SMLOCAL_LL_STATS_THREAD"


@dataclass
class PreparedBatch:
    X: Any  # device: dense (n, d) normalised, or CSR with scaled columns
    y: Any  # device (n, 1) float32: 0/1, class index, or normalised regression label
    y_raw: np.ndarray  # host (n,) float32: the label as given
    w: Any = None  # device (n, 1) per-row weight (multiclass class weights) or None
    sparse: bool = False
    # GPU, sparse: X transposed as CSR. cuSPARSE's product with a transposed operand rounds differently
    # from run to run; with X.T stored as CSR the gradient's product is untransposed, and repeatable.
    XT: Any = None

    def __len__(self) -> int:
        return int(self.y_raw.shape[0])

    @property
    def nbytes(self) -> int:
        X = self.X
        if self.sparse:
            size = sum(M.data.nbytes + M.indices.nbytes + M.indptr.nbytes for M in (X, self.XT) if M is not None)
        else:
            size = X.nbytes
        return int(size + 3 * self.y_raw.nbytes)  # + labels on the device, on the host and weights


def initial_parameters(d: int, K: int, *, method: str, scale: float, sigma: float, bias: float,
                       use_bias: bool, seed: int = INIT_SEED) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if method == "normal":
        W = rng.normal(0.0, sigma, size=(d, K))
    else:
        W = rng.uniform(-scale, scale, size=(d, K))
    b = np.full((1, K), bias if use_bias else 0.0)
    return np.vstack([W, b]).astype(np.float32)


def background_stats() -> bool:
    """Whether pass statistics run on a thread of their own (``SMLOCAL_LL_STATS_THREAD=0``: inline)."""
    return os.environ.get(STATS_THREAD_ENV, "1").strip() != "0" and (os.cpu_count() or 1) > 1


def ones_row(xp: Any, n: int, dtype: Any) -> Any:
    """(1, n) ones: ``ones_row @ A`` sums the columns of an (n, K) array in one GEMV, where numpy's
    ``sum(axis=0)`` of a C-ordered array adds it row by row, several times slower at these sizes."""
    return xp.ones((1, n), dtype=dtype)


class ParallelLinear:
    def __init__(self, xp: Any, P: Any, num_models: int, outputs: int, loss: Loss,
                 optimizer: ParallelOptimizer | None = None, pos_weight: np.ndarray | None = None,
                 shift: np.ndarray | None = None, sync: Callable[..., bool] | None = None):
        self.xp, self.P, self.M, self.C, self.loss, self.opt = xp, P, num_models, outputs, loss, optimizer
        self.sync = sync  # several hosts: (g, rows, active) -> g made the global mean (ll_sync.GradientSync)
        self.d = int(P.shape[0]) - 1
        self.K = num_models * outputs
        if P.shape[1] != self.K:
            raise ValueError(f"parameters {P.shape} do not hold {num_models} x {outputs} columns")
        # binary: per-model weight of positive rows, 1 + y * (w - 1)
        if pos_weight is not None and np.any(np.asarray(pos_weight) != 1.0):
            self._pos_m1 = xp.asarray((np.asarray(pos_weight, np.float64) - 1.0).astype(P.dtype)).reshape(1, -1)
        else:
            self._pos_m1 = None
        self._row_weights: tuple[int, Any] | None = None  # (rows, table) of _positive_weights
        self.shift = None if shift is None or not np.any(shift) else xp.asarray(np.asarray(shift, P.dtype))
        self._g = xp.zeros(P.shape, dtype=P.dtype)

    # ---- forward ----
    def raw_scores(self, b: PreparedBatch) -> Any:
        """(n, K) linear outputs of every model."""
        W = self.P[:-1]
        S = b.X @ W
        if not isinstance(S, self.xp.ndarray):  # scipy/cupyx may return a matrix type
            S = self.xp.asarray(S)
        if b.sparse and self.shift is not None:
            S += self.P[-1] - self.shift @ W
        else:
            S += self.P[-1]
        return S

    def view(self, S: Any) -> Any:
        """(n, M) for one output per model, (n, C, M) for multiclass."""
        return S.reshape(S.shape[0], self.C, self.M) if self.C > 1 else S

    def scores(self, b: PreparedBatch) -> Any:
        """The scores view of every model on ``b``."""
        return self.view(self.raw_scores(b))

    def evaluate(self, b: PreparedBatch) -> tuple[Any, Any]:
        Sv = self.scores(b)
        L, _ = self.loss(self.xp, Sv, b.y, grad=False)
        return Sv, L

    # ---- training ----
    def train_step(self, b: PreparedBatch, losses: bool = True) -> tuple[Any, Any]:
        """One optimizer step of every model on ``b``; returns (scores view, per-row losses) before it, the
        losses None unless ``losses`` (an ``EpochStats`` given the loss computes them, off this thread)."""
        xp, n = self.xp, len(b)
        Sv = self.scores(b)
        if losses:
            L, G = self.loss(xp, Sv, b.y, grad=True)
        else:
            L, G = None, self.loss.gradient(xp, Sv, b.y)
        scale = 1.0 / n
        if self._pos_m1 is not None:
            G *= self._positive_weights(n).take(b.y.reshape(-1).astype(xp.intp), axis=0)
        elif b.w is not None:
            G *= (b.w * scale)[:, :, None] if self.C > 1 else b.w * scale
        else:
            G *= scale
        G2 = G.reshape(n, self.K)
        g = self._g
        if b.sparse:
            gw = (b.X.T if b.XT is None else b.XT) @ G2
            g[:-1] = gw if isinstance(gw, xp.ndarray) else xp.asarray(gw)
        else:
            xp.matmul(b.X.T, G2, out=g[:-1])
        xp.matmul(ones_row(xp, n, G2.dtype), G2, out=g[-1:])
        if b.sparse and self.shift is not None:
            g[:-1] -= self.shift[:, None] * g[-1][None, :]
        if self.sync is not None:
            self.sync(g, n)
        self.opt.step(self.P, g)
        return Sv, L

    def _positive_weights(self, n: int) -> Any:
        """(2, K): the row weight ``(1 + y * (w - 1)) / n`` of every model for y = 0 and y = 1, so that a
        batch's (n, K) weights are one gather by label instead of three (n, K) operations."""
        if self._row_weights is None or self._row_weights[0] != n:
            labels = self.xp.asarray(np.array([[0.0], [1.0]], dtype=self.P.dtype))
            self._row_weights = (n, (labels * self._pos_m1 + 1.0) * (1.0 / n))
        return self._row_weights[1]

    def idle_step(self) -> bool:
        """Several hosts, this one out of rows for the epoch: take the other hosts' step with an empty
        contribution, so the models stay identical. False (no step) once every host is out of rows."""
        g = self._g
        g[...] = 0
        if not self.sync(g, 0, active=False):
            return False
        self.opt.step(self.P, g)
        return True

    # ---- extraction ----
    def model_block(self, m: int) -> np.ndarray:
        """Model ``m``'s (d + 1, C) parameters on the host (normalised space)."""
        return np.array(to_numpy(self.P[:, m::self.M]), dtype=np.float32)  # a copy: P keeps training

    def host_parameters(self) -> np.ndarray:
        return np.array(to_numpy(self.P), dtype=np.float32)


class EpochStats:
    """Per-model sums over one pass: the objective, and what the selection criterion needs."""

    def __init__(self, xp: Any, num_models: int, criterion: Criterion, report_factor: float = 1.0,
                 binary: bool = False, loss: Loss | None = None):
        self.xp, self.M, self.criterion, self.report_factor = xp, num_models, criterion, report_factor
        self.loss = loss  # computes the per-row losses of a batch added without them
        self.loss_sum = xp.zeros(num_models, dtype=xp.float64)
        self.rows = 0
        self.hist = ThresholdHistogram(xp, num_models) if binary and criterion.kind == "threshold" else None
        self.xent_sum = xp.zeros(num_models, dtype=xp.float64) if criterion.kind == "cross_entropy" else None
        # on the host the sums run on a second thread, overlapping the next steps (a GPU is asynchronous anyway)
        self._worker = OrderedWorker() if xp is np and background_stats() else None
        self._group: list[tuple[Any, Any, Any]] = []

    def add(self, Sv: Any, y: Any, L: Any = None) -> None:
        """Count one batch: its scores ``Sv``, labels ``y`` and per-row losses ``L``, which must not change
        afterwards (every step makes new ones). Without ``L`` they are computed here by ``loss``, on the
        statistics thread: the training step then only needs the gradient (logistic: 4 passes over the
        batch instead of 13)."""
        self.rows += int(Sv.shape[0])
        self._group.append((Sv, y, L))
        if len(self._group) >= STATS_GROUP:
            self._submit()

    def wait(self) -> None:
        """Return once every batch added is counted (the sums are read or replaced after this)."""
        if self._group:
            self._submit()
        if self._worker is not None:
            self._worker.wait()

    def _submit(self) -> None:
        # batches are summed in groups, on the thread or not, so that the sums do not depend on where
        group, self._group = self._group, []
        if self._worker is None:
            self._accumulate_group(group)
        else:
            self._worker.submit(self._accumulate_group, group)

    def _accumulate_group(self, group: list[tuple[Any, Any, Any]]) -> None:
        """The group's batches as one: a few numpy calls on 8 batches' rows rather than many on each, so
        that this thread seldom holds the GIL the training step's calls wait for (measured with the
        gradient-only step: 0.76x the time of the binary benchmark's 32 models). Big batches gain nothing
        from it and are not copied."""
        if len(group) == 1 or sum(Sv.nbytes for Sv, _, _ in group) > STATS_GROUP_BYTES:
            for batch in group:
                self._accumulate(*batch)
            return
        xp = self.xp
        Ls = [L for _, _, L in group]
        self._accumulate(xp.concatenate([Sv for Sv, _, _ in group]), xp.concatenate([y for _, y, _ in group]),
                         None if any(L is None for L in Ls) else xp.concatenate(Ls))

    def _accumulate(self, Sv: Any, y: Any, L: Any) -> None:
        if L is None:
            L, _ = self.loss(self.xp, Sv, y, grad=False)
        self.loss_sum += (ones_row(self.xp, L.shape[0], L.dtype) @ L)[0]
        if self.hist is not None:
            self.hist.add(Sv, y)
        if self.xent_sum is not None:
            X, _ = Logistic()(self.xp, Sv, y, grad=False)
            self.xent_sum += X.sum(axis=0, dtype=self.xp.float64)

    def objective(self) -> np.ndarray:
        """Mean loss of every model in the label's own units."""
        self.wait()
        return to_numpy(self.loss_sum) / max(self.rows, 1) * self.report_factor

    def criterion_values(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(value per model, threshold per model or None)."""
        self.wait()
        if self.hist is not None:
            return self.hist.values(self.criterion)
        if self.xent_sum is not None:
            return to_numpy(self.xent_sum) / max(self.rows, 1), None
        return self.objective(), None
