"""Linear learner losses and their gradients, vectorised over all parallel models at once.

Each loss maps scores ``S`` and labels ``y`` to per-sample losses ``L`` and ``dL/dS``:

- scalar-output losses take ``S`` of shape (n, M) (one column per model) and ``y`` of shape (n, 1);
- ``softmax_loss`` takes ``S`` of shape (n, C, M) (class-major) and class labels ``y`` of shape (n, 1).

Everything is written against the array module ``xp`` (numpy or CuPy) and stays float32 (Python
scalars never upcast). ``degree`` says how a loss value scales with the label's unit (2 for squared
losses, 1 for absolute ones, 0 for classification), so a loss computed on a normalised label converts
to the user's units by ``value * label_std ** degree``; ``in_units(u)`` re-expresses the loss's own
parameters (``huber_delta``, ``loss_insensitivity``) in a label unit ``u``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from smlocal.algorithms.linear_learner.config import BINARY, MULTICLASS


@dataclass(frozen=True)
class Loss:
    name: str = ""
    degree: int = 0

    def __call__(self, xp: Any, S: Any, y: Any, grad: bool = True) -> tuple[Any, Any]:
        raise NotImplementedError

    def gradient(self, xp: Any, S: Any, y: Any) -> Any:
        """dL/dS alone: what a training step needs (the pass's loss values are summed on the statistics
        thread, ``EpochStats``)."""
        return self(xp, S, y, grad=True)[1]

    def in_units(self, unit: float) -> "Loss":
        """The same loss for labels divided by ``unit`` (parameters that are lengths are divided too)."""
        return self


@dataclass(frozen=True)
class Logistic(Loss):
    name: str = "logistic"

    def __call__(self, xp, S, y, grad=True):
        # log(1 + exp(-s)) for y=1 and log(1 + exp(s)) for y=0, without overflow: log1p(e^-|s|) + max(s,0) - y s.
        # In place: this runs on every (rows, models) batch, where each temporary costs as much as the math.
        e = xp.abs(S)
        xp.negative(e, out=e)
        xp.exp(e, out=e)
        L = xp.log1p(e)
        L += xp.maximum(S, 0)
        L -= y * S
        return L, (self.gradient(xp, S, y) if grad else None)

    def gradient(self, xp, S, y):
        # sigmoid(s) - y as tanh(s / 2) / 2 - (y - 1/2): four passes over the (rows, models) batch, the
        # fewest found, and tanh cannot overflow (1 / (1 + e^-s) takes five and overflows below s = -88)
        G = xp.multiply(S, 0.5)
        xp.tanh(G, out=G)
        G *= 0.5
        G -= y - 0.5
        return G


@dataclass(frozen=True)
class Hinge(Loss):
    name: str = "hinge_loss"
    margin: float = 1.0

    def __call__(self, xp, S, y, grad=True):
        t = 2 * y - 1  # {0,1} -> {-1,+1}
        slack = self.margin - t * S
        L = xp.maximum(slack, 0)
        return L, ((slack > 0) * -t).astype(S.dtype) if grad else None


@dataclass(frozen=True)
class Squared(Loss):
    name: str = "squared_loss"
    degree: int = 2

    def __call__(self, xp, S, y, grad=True):
        r = S - y
        return r * r, (2 * r if grad else None)


@dataclass(frozen=True)
class Absolute(Loss):
    name: str = "absolute_loss"
    degree: int = 1

    def __call__(self, xp, S, y, grad=True):
        r = S - y
        return xp.abs(r), (xp.sign(r) if grad else None)


@dataclass(frozen=True)
class EpsSquared(Loss):
    name: str = "eps_insensitive_squared_loss"
    degree: int = 2
    eps: float = 0.01

    def __call__(self, xp, S, y, grad=True):
        r = S - y
        excess = xp.maximum(xp.abs(r) - self.eps, 0)
        return excess * excess, (2 * excess * xp.sign(r) if grad else None)

    def in_units(self, unit):
        return replace(self, eps=self.eps / unit)


@dataclass(frozen=True)
class EpsAbsolute(Loss):
    name: str = "eps_insensitive_absolute_loss"
    degree: int = 1
    eps: float = 0.01

    def __call__(self, xp, S, y, grad=True):
        r = S - y
        excess = xp.abs(r) - self.eps
        L = xp.maximum(excess, 0)
        return L, ((excess > 0) * xp.sign(r)).astype(S.dtype) if grad else None

    def in_units(self, unit):
        return replace(self, eps=self.eps / unit)


@dataclass(frozen=True)
class Quantile(Loss):
    name: str = "quantile_loss"
    degree: int = 1
    q: float = 0.5

    def __call__(self, xp, S, y, grad=True):
        r = y - S  # under-prediction is weighted by q, over-prediction by 1 - q
        L = xp.maximum(self.q * r, (self.q - 1) * r)
        if not grad:
            return L, None
        return L, xp.where(r > 0, -self.q, 1 - self.q).astype(S.dtype)


@dataclass(frozen=True)
class Huber(Loss):
    name: str = "huber_loss"
    degree: int = 2
    delta: float = 1.0

    def __call__(self, xp, S, y, grad=True):
        r = S - y
        a = xp.abs(r)
        L = xp.where(a <= self.delta, 0.5 * r * r, self.delta * (a - 0.5 * self.delta))
        return L, (xp.clip(r, -self.delta, self.delta) if grad else None)

    def in_units(self, unit):
        return replace(self, delta=self.delta / unit)


@dataclass(frozen=True)
class Softmax(Loss):
    name: str = "softmax_loss"

    def __call__(self, xp, S, y, grad=True):
        # S (n, C, M): class-major, so the reductions over classes run along contiguous model rows
        n = S.shape[0]
        top = S.max(axis=1, keepdims=True)
        e = xp.exp(S - top)
        z = e.sum(axis=1, keepdims=True)
        rows = xp.arange(n)
        cls = y.reshape(-1).astype(xp.int64)
        L = xp.log(z[:, 0, :]) + top[:, 0, :] - S[rows, cls, :]
        if not grad:
            return L, None
        G = e / z
        G[rows, cls, :] -= 1
        return L, G


def make_loss(name: str, *, margin: float = 1.0, quantile: float = 0.5, loss_insensitivity: float = 0.01,
              huber_delta: float = 1.0) -> Loss:
    """The loss called ``name`` with its parameters (hyperparameters of the same names)."""
    table = {
        "logistic": Logistic(),
        "hinge_loss": Hinge(margin=margin),
        "squared_loss": Squared(),
        "absolute_loss": Absolute(),
        "eps_insensitive_squared_loss": EpsSquared(eps=loss_insensitivity),
        "eps_insensitive_absolute_loss": EpsAbsolute(eps=loss_insensitivity),
        "quantile_loss": Quantile(q=quantile),
        "huber_loss": Huber(delta=huber_delta),
        "softmax_loss": Softmax(),
    }
    return table[name]


def objective_name(predictor_type: str, loss: str) -> str:
    """The ``<objective>`` of the ``train_<objective>`` metric lines: the names the built-in logs, which
    SageMaker's objective_loss metric regexes match as ``<split> ..._objective``."""
    if loss == "logistic":
        return "binary_classification_cross_entropy_objective"
    if loss == "softmax_loss":
        return "multiclass_cross_entropy_objective"
    if loss == "squared_loss":
        return "mse_objective"
    if predictor_type == BINARY:
        return f"binary_classification_{loss}_objective"
    if predictor_type == MULTICLASS:
        return f"multiclass_{loss}_objective"
    return f"{loss.removesuffix('_loss')}_loss_objective"
