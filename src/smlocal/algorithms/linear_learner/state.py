"""What a linear learner job knows between epochs, how it starts, and how it is checkpointed.

``start_state`` builds the initial state from the scaler sample (the first ``num_point_for_scaler``
training rows): the scaler, the class balance behind ``positive_example_weight_mult`` = auto/balanced
and ``balance_multiclass_weights``, the per-model hyperparameters and the initial weights.
``to_checkpoint``/``from_checkpoint`` flatten it into named arrays plus JSON metadata (``ll_checkpoint``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp

from smlocal.algorithms.linear_learner.config import BINARY, MULTICLASS, LLConfig
from smlocal.algorithms.linear_learner.model import initial_parameters
from smlocal.algorithms.linear_learner.scaler import Scaler, fit_scaler
from smlocal.algorithms.linear_learner.spread import Spread, spread
from smlocal.arrays import to_numpy


@dataclass
class Best:
    """The best (epoch, model) so far: its normalised-space parameters and criterion value."""

    epoch: int
    model: int
    value: float
    block: np.ndarray  # (d + 1, C)


@dataclass
class State:
    scaler: Scaler
    spread: Spread
    P: np.ndarray  # (d + 1, C * M) all models, host copy
    class_weights: np.ndarray | None
    sparse: bool
    epochs_done: int = 0
    stopped: bool = False
    t: int = 0  # optimizer updates done
    opt_arrays: dict[str, np.ndarray] | None = None
    early: dict | None = None
    best: Best | None = None
    notes: list[str] = field(default_factory=list)  # what to log about the sample


def start_state(cfg: LLConfig, features: Sequence[Any], labels: np.ndarray,
                allreduce: Callable[[np.ndarray], np.ndarray] | None = None) -> State:
    """The initial state from the scaler sample (feature blocks, dense or CSR, and their checked labels).

    ``allreduce`` (several hosts; sums an array over them): the scaler and the class balance come from
    every host's sample together, so every host starts from the same state.
    """
    sparse = any(sp.issparse(f) for f in features)
    X = sp.vstack(features, format="csr") if sparse else np.vstack([np.asarray(f) for f in features])
    X, y = X[:cfg.num_point_for_scaler], np.asarray(labels)[:cfg.num_point_for_scaler]
    if allreduce is not None:  # sparse on any host: decided alike everywhere
        sparse = bool(allreduce(np.array([float(sparse)]))[0] > 0)
    # auto: features are shifted only when that keeps them dense and there is a bias to absorb the shift
    unbias_data = cfg.unbias_data if cfg.unbias_data != "auto" else (cfg.use_bias and not sparse)
    scaler = fit_scaler([X], y, normalize_data=cfg.normalize_data, unbias_data=bool(unbias_data),
                        normalize_label=cfg.normalize_label, unbias_label=cfg.unbias_label, allreduce=allreduce)
    notes = []
    ratio = 1.0
    if cfg.predictor_type == BINARY:
        positives, rows = float(y.sum()), float(len(y))
        if allreduce is not None:
            positives, rows = (float(v) for v in allreduce(np.array([positives, rows])))
        ratio = (rows - positives) / positives if 0 < positives < rows else 1.0
    class_weights = None
    if cfg.predictor_type == MULTICLASS and cfg.balance_multiclass_weights:
        counts = np.bincount(y.astype(np.int64), minlength=cfg.num_classes).astype(np.float64)
        rows = len(y)
        if allreduce is not None:
            counts = allreduce(counts)
            rows = float(counts.sum())
        class_weights = rows / (cfg.num_classes * np.maximum(counts, 1.0))
        notes.append(f"Class weights: {class_weights.tolist()}")
    P = initial_parameters(X.shape[1], cfg.num_models * cfg.outputs, method=cfg.init_method, scale=cfg.init_scale,
                           sigma=cfg.init_sigma, bias=cfg.init_bias, use_bias=cfg.use_bias)
    return State(scaler=scaler, spread=spread(cfg, cfg.num_models, balance_ratio=ratio), P=P,
                 class_weights=class_weights, sparse=sparse, notes=notes)


def to_checkpoint(state: State, P: Any, opt_t: int, opt_arrays: dict[str, Any], early: dict,
                  epochs_done: int, stopped: bool, fingerprint: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) for ``ll_checkpoint.save_state``; device arrays are copied to the host."""
    best = state.best
    meta = {"fingerprint": fingerprint, "epochs_done": epochs_done, "stopped": stopped, "t": opt_t,
            "sparse": state.sparse, "early": early,
            "best": None if best is None else {"epoch": best.epoch, "model": best.model, "value": best.value}}
    arrays = {"P": to_numpy(P), "scaler_mean": state.scaler.mean, "scaler_std": state.scaler.std,
              "scaler_label": np.array([state.scaler.label_mean, state.scaler.label_std]),
              "class_weights": state.class_weights if state.class_weights is not None else np.zeros(0)}
    arrays.update({f"spread_{k}": v for k, v in state.spread.arrays().items()})
    arrays.update({f"opt_{k}": to_numpy(v) for k, v in opt_arrays.items()})
    if best is not None:
        arrays["best_block"] = best.block
    return meta, arrays


def from_checkpoint(meta: dict, arrays: dict[str, np.ndarray]) -> State:
    best = None
    if meta.get("best"):
        b = meta["best"]
        best = Best(epoch=int(b["epoch"]), model=int(b["model"]), value=float(b["value"]), block=arrays["best_block"])
    cw = arrays.get("class_weights")
    return State(
        scaler=Scaler.from_arrays({"mean": arrays["scaler_mean"], "std": arrays["scaler_std"],
                                   "label": arrays["scaler_label"]}),
        spread=Spread(**{k: arrays[f"spread_{k}"] for k in Spread.__dataclass_fields__}),
        P=arrays["P"], class_weights=cw if cw is not None and cw.size else None, sparse=bool(meta["sparse"]),
        epochs_done=int(meta["epochs_done"]), stopped=bool(meta["stopped"]), t=int(meta["t"]),
        opt_arrays={k[4:]: v for k, v in arrays.items() if k.startswith("opt_")}, early=meta.get("early"),
        best=best)
