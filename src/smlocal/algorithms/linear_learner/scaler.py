"""The linear learner's scaler: feature/label mean and std from the first ``num_point_for_scaler`` rows.

Training sees ``x_n = (x - mean) / std`` and (regression) ``y_n = (y - label_mean) / label_std``. The
saved model must act on raw features and give raw label units (the built-in's saved models hold no
normalisation: a real regressor's bias is in the label's units), so ``fold`` turns
the normalised-space parameters into raw-space ones:

    w_raw = w * label_std / std
    b_raw = label_std * (b - sum(w * mean / std)) + label_mean

A feature whose std is 0 (constant in the sample) is only shifted, never divided by 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp


@dataclass
class Scaler:
    mean: np.ndarray  # (d,) float64, zeros when the features are not shifted
    std: np.ndarray  # (d,) float64, ones when the features are not scaled
    label_mean: float = 0.0
    label_std: float = 1.0

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def shift(self) -> np.ndarray:
        """``mean / std``: what the model subtracts from sparse batches, which reach it unshifted."""
        return self.mean / self.std

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Normalise dense host features (float32)."""
        return ((X - self.mean.astype(np.float32)) * (1.0 / self.std).astype(np.float32)).astype(np.float32)

    def transform_label(self, y: np.ndarray) -> np.ndarray:
        return ((y - self.label_mean) / self.label_std).astype(np.float32)

    def fold(self, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised-space ``W`` (d, C) and ``b`` (C,) -> raw-space (float64)."""
        W = np.asarray(W, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64).reshape(-1)
        scaled = W / self.std[:, None]
        w_raw = scaled * self.label_std
        b_raw = self.label_std * (b - self.mean @ scaled) + self.label_mean
        return w_raw, b_raw

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "std": self.std, "label": np.array([self.label_mean, self.label_std])}

    @classmethod
    def from_arrays(cls, a) -> "Scaler":
        return cls(np.asarray(a["mean"], np.float64), np.asarray(a["std"], np.float64),
                   float(a["label"][0]), float(a["label"][1]))


def _moments(X) -> tuple[np.ndarray, np.ndarray]:
    n = X.shape[0]
    if sp.issparse(X):
        X = X.tocsr().astype(np.float64)
        mean = np.asarray(X.sum(axis=0)).ravel() / n
        ex2 = np.asarray(X.multiply(X).sum(axis=0)).ravel() / n
        var = np.maximum(ex2 - mean * mean, 0.0)
        var[var <= 1e-12 * np.maximum(ex2, 1e-300)] = 0.0  # cancellation noise of a constant column
        return mean, np.sqrt(var)
    X = np.asarray(X, dtype=np.float64)
    return X.mean(axis=0), X.std(axis=0)


def _merged_moments(X, allreduce: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and std of the rows of every host (``allreduce`` sums an array over the hosts).

    Two passes (sums, then squared deviations from the global mean), the same for dense and CSR rows, so
    every host sends arrays of the same shapes whatever its sample looks like.
    """
    sparse = sp.issparse(X)
    X = X.tocsr().astype(np.float64) if sparse else np.asarray(X, dtype=np.float64)
    col_sums = np.asarray(X.sum(axis=0)).ravel()
    total = allreduce(np.concatenate([[X.shape[0]], col_sums]))
    n = max(total[0], 1.0)
    mean = total[1:] / n
    if sparse:  # sum (x - m)^2 = sum x^2 - 2 m sum x + rows m^2, without densifying
        local = np.asarray(X.multiply(X).sum(axis=0)).ravel() - 2 * mean * col_sums + X.shape[0] * mean * mean
    else:
        local = ((X - mean) ** 2).sum(axis=0)
    var = np.maximum(allreduce(local) / n, 0.0)
    if sparse:
        var[var <= 1e-12 * np.maximum(mean * mean, 1e-300)] = 0.0  # cancellation noise of a constant column
    return mean, np.sqrt(var)


def fit_scaler(features: Sequence, labels: np.ndarray | None, *, normalize_data: bool, unbias_data: bool,
               normalize_label: bool, unbias_label: bool,
               allreduce: Callable[[np.ndarray], np.ndarray] | None = None) -> Scaler:
    """Compute the scaler from sample rows (a list of dense arrays or CSR blocks, same width).

    ``allreduce`` (several hosts): the statistics are those of every host's sample rows together.
    """
    X = sp.vstack(features, format="csr") if any(sp.issparse(f) for f in features) else np.vstack(features)
    mean, std = _moments(X) if allreduce is None else _merged_moments(X, allreduce)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    scaler = Scaler(mean=mean if unbias_data else np.zeros_like(mean),
                    std=std if normalize_data else np.ones_like(std))
    if labels is not None and (normalize_label or unbias_label):
        y = np.asarray(labels, dtype=np.float64)
        if allreduce is not None:
            y_mean, y_std = (float(v[0]) for v in _merged_moments(y.reshape(-1, 1), allreduce))
        else:
            y_mean, y_std = float(y.mean()), float(y.std())
        if unbias_label:
            scaler.label_mean = y_mean
        if normalize_label:
            s = y_std
            scaler.label_std = s if np.isfinite(s) and s > 0 else 1.0
    return scaler


def _nd(a: np.ndarray) -> str:
    """An NDArray-like rendering, as the built-in's log shows it."""
    with np.printoptions(precision=8, threshold=8, edgeitems=3):
        body = np.array2string(np.asarray(a, dtype=np.float32), separator=" ")
    return f"\n{body}\n<NDArray {np.asarray(a).size} @cpu(0)>"


def describe(scaler: Scaler, regression: bool) -> str:
    label_std = _nd(np.array([scaler.label_std])) if regression else None
    label_mean = _nd(np.array([scaler.label_mean])) if regression else None
    return (f"{{'stdev_weight': {_nd(scaler.std)}, 'stdev_label': {label_std}, "
            f"'mean_label': {label_mean}, 'mean_weight': {_nd(scaler.mean)}}}")
