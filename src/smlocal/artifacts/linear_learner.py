"""The linear-learner ``model_algo-1``: a ZIP (entries stored) around an MXNet Module checkpoint.

Members, as in the real built-in artifacts: ``mx-mod-0000.params`` (NDArray dict ``arg:fc0_weight``
(d, C), ``arg:fc0_bias`` (1, C)), ``mx-mod-symbol.json``, ``manifest.json`` and ``additional-params.json``
(threshold, loss, predictor type, metrics parameters). The weights act on raw features: normalisation is
folded in.
"""
from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from smlocal.artifacts.mxnet_ndarray import dumps_ndarrays, loads_ndarrays
from smlocal.artifacts.symbol_json import HEAD_OPS, head_op_of, linear_symbol_json

BINARY = "binary_classifier"
MULTICLASS = "multiclass_classifier"
REGRESSOR = "regressor"
PREDICTOR_TYPES = (BINARY, MULTICLASS, REGRESSOR)

PARAMS = "mx-mod-0000.params"
SYMBOL = "mx-mod-symbol.json"
MANIFEST = "manifest.json"
ADDITIONAL = "additional-params.json"
# the member order of the built-in's 2020+ artifacts
MEMBERS = (PARAMS, SYMBOL, MANIFEST, ADDITIONAL)
MANIFEST_CONTENT = {"mx-mod": "mxnet_module", "additional-params.json": "json", "version": 1}

DEFAULT_LOSS = {BINARY: "logistic", MULTICLASS: "softmax_loss", REGRESSOR: "squared_loss"}
HINGE = "hinge_loss"


class LinearLearnerFormatError(ValueError):
    """The bytes are not a linear-learner model archive."""


def head_op_for(predictor_type: str, loss_type: str) -> str:
    """The MXNet output op whose forward pass equals our score (what Module.load + forward returns)."""
    if predictor_type == REGRESSOR:
        return "LinearRegressionOutput"
    if predictor_type == MULTICLASS:
        return "SoftmaxOutput"
    # hinge loss: the score is the raw margin, which SVMOutput's forward passes through
    return "SVMOutput" if loss_type == HINGE else "LogisticRegressionOutput"


def default_metrics_params(predictor_type: str, threshold: float) -> dict[str, Any]:
    """``metrics_params`` as the built-in writes them with default hyperparameters (2023 key order)."""
    return {
        "quantile": None, "huber_delta": None, "margin": None, "loss_insensitivity": None,
        "eps_insensitive_loss_type": None, "accuracy_top_k": 3,
        "f_beta": 1.0 if predictor_type == BINARY else None,
        "positive_example_weight_mult": 1.0, "class_weights": None, "threshold": threshold,
    }


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp(-logaddexp(0, -z)) == 1 / (1 + exp(-z)) without overflow warnings for large |z|
    return np.exp(-np.logaddexp(0.0, -z.astype(np.float64))).astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    shifted = z.astype(np.float64) - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass
class LinearLearnerModel:
    weight: np.ndarray  # (feature_dim, num_outputs) float32
    bias: np.ndarray  # (1, num_outputs) float32
    predictor_type: str
    threshold: float = 0.5
    loss_type: Optional[str] = None  # None -> the predictor type's default loss
    metrics_params: dict = field(default_factory=dict)

    algorithm = "linear-learner"

    def __post_init__(self) -> None:
        if self.predictor_type not in PREDICTOR_TYPES:
            raise ValueError(f"predictor_type {self.predictor_type!r} is not one of {PREDICTOR_TYPES}")
        w = np.asarray(self.weight, dtype=np.float32)
        if w.ndim == 1:
            w = w.reshape(-1, 1)
        if w.ndim != 2:
            raise ValueError(f"weight must be (feature_dim, num_outputs), got shape {w.shape}")
        b = np.asarray(self.bias, dtype=np.float32).reshape(1, -1)
        if b.shape[1] != w.shape[1]:
            raise ValueError(f"bias {b.shape} does not match weight {w.shape}")
        if self.predictor_type != MULTICLASS and w.shape[1] != 1:
            raise ValueError(f"a {self.predictor_type} has one output column, got weight {w.shape}")
        if self.predictor_type == MULTICLASS and w.shape[1] < 2:
            raise ValueError(f"a multiclass classifier needs >= 2 output columns, got weight {w.shape}")
        self.weight, self.bias = w, b
        self.threshold = float(self.threshold)
        self.loss_type = self.loss_type or DEFAULT_LOSS[self.predictor_type]

    @property
    def feature_dim(self) -> int:
        return int(self.weight.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.weight.shape[1]) if self.predictor_type == MULTICLASS else 1

    def linear(self, X) -> np.ndarray:
        """x . w + b in float32 (n, C), like MXNet's forward; ``X`` dense (n, d) or scipy sparse."""
        if X.shape[1] != self.feature_dim:
            raise ValueError(f"expected {self.feature_dim} features, got {X.shape[1]}")
        if hasattr(X, "tocsr"):
            z = np.asarray(X.tocsr().astype(np.float32) @ self.weight)
        else:
            z = np.asarray(X, dtype=np.float32) @ self.weight
        return (z + self.bias).astype(np.float32, copy=False)

    def scores(self, X) -> np.ndarray:
        """The built-in's ``score``: (n,) for binary/regressor, (n, C) for multiclass, float32."""
        z = self.linear(X)
        if self.predictor_type == MULTICLASS:
            return _softmax(z)
        if self.predictor_type == BINARY and self.loss_type != HINGE:
            return _sigmoid(z[:, 0])
        return z[:, 0]

    def outputs(self, X) -> dict[str, np.ndarray]:
        """The response columns, in the built-in's key order: score [, predicted_label]."""
        score = self.scores(X)
        if self.predictor_type == BINARY:
            return {"score": score, "predicted_label": (score > self.threshold).astype(np.float32)}
        if self.predictor_type == MULTICLASS:
            return {"score": score, "predicted_label": score.argmax(axis=1).astype(np.float32)}
        return {"score": score}

    def additional_params(self) -> dict[str, Any]:
        metrics = dict(self.metrics_params) or default_metrics_params(self.predictor_type, self.threshold)
        return {"threshold": self.threshold, "loss_type": self.loss_type,
                "predictor_type": self.predictor_type, "metrics_params": metrics}


def _zip_member(name: str, date_time: tuple) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=date_time)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3  # Unix, as in the built-in's archives
    info.external_attr = 0o100644 << 16
    return info


def dumps_linear_learner(model: LinearLearnerModel, date_time: Optional[tuple] = None) -> bytes:
    """The ``model_algo-1`` bytes for ``model``. ``date_time``: the entries' timestamp (default: now, UTC)."""
    stamp = tuple(date_time or time.gmtime()[:6])
    contents = {
        PARAMS: dumps_ndarrays({"arg:fc0_weight": model.weight, "arg:fc0_bias": model.bias}),
        SYMBOL: linear_symbol_json(model.feature_dim, model.weight.shape[1],
                                   head_op_for(model.predictor_type, model.loss_type)).encode(),
        MANIFEST: json.dumps(MANIFEST_CONTENT).encode(),
        ADDITIONAL: json.dumps(model.additional_params()).encode(),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in MEMBERS:
            zf.writestr(_zip_member(name, stamp), contents[name])
    return buf.getvalue()


def _predictor_from_head(symbol_text: str, num_outputs: int) -> Optional[str]:
    op = head_op_of(symbol_text)
    if op == "SoftmaxOutput" or num_outputs > 1:
        return MULTICLASS
    if op == "LogisticRegressionOutput":
        return BINARY
    if op in ("LinearRegressionOutput", "MAERegressionOutput"):
        return REGRESSOR
    return None


def loads_linear_learner(data: bytes) -> LinearLearnerModel:
    """Parse a linear-learner ``model_algo-1`` (any member order, 2018-2024 layouts)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise LinearLearnerFormatError(f"not a ZIP archive ({exc})") from None
    with zf:
        names = set(zf.namelist())
        if PARAMS not in names:
            raise LinearLearnerFormatError(f"the archive has no {PARAMS} (members: {sorted(names)})")
        try:
            params = loads_ndarrays(zf.read(PARAMS))
            symbol = zf.read(SYMBOL).decode("utf-8") if SYMBOL in names else ""
            extra = json.loads(zf.read(ADDITIONAL)) if ADDITIONAL in names else {}
        except (ValueError, zipfile.BadZipFile, RuntimeError) as exc:
            raise LinearLearnerFormatError(f"unreadable member: {exc}") from None
    if not isinstance(params, Mapping) or "arg:fc0_weight" not in params:
        raise LinearLearnerFormatError(f"{PARAMS} holds no 'arg:fc0_weight'")
    if not isinstance(extra, Mapping):
        raise LinearLearnerFormatError(f"{ADDITIONAL} is not a JSON object")
    weight = np.asarray(params["arg:fc0_weight"], dtype=np.float32)
    if weight.ndim != 2:
        raise LinearLearnerFormatError(f"arg:fc0_weight has shape {weight.shape}, expected (feature_dim, C)")
    bias = params.get("arg:fc0_bias")
    bias = np.zeros((1, weight.shape[1]), np.float32) if bias is None else bias  # use_bias=false
    predictor = extra.get("predictor_type") or _predictor_from_head(symbol, weight.shape[1])
    if predictor is None:
        raise LinearLearnerFormatError(f"cannot tell the predictor type: no {ADDITIONAL} and an unknown head")
    try:
        return LinearLearnerModel(
            weight=weight, bias=bias, predictor_type=predictor,
            threshold=float(extra.get("threshold", 0.5)), loss_type=extra.get("loss_type"),
            metrics_params=dict(extra.get("metrics_params") or {}),
        )
    except (ValueError, TypeError) as exc:
        raise LinearLearnerFormatError(str(exc)) from None


__all__ = [
    "LinearLearnerModel", "LinearLearnerFormatError", "dumps_linear_learner", "loads_linear_learner",
    "head_op_for", "default_metrics_params", "HEAD_OPS", "BINARY", "MULTICLASS", "REGRESSOR",
]
