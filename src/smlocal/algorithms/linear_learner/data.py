"""From the data plane's batches to the trainer's: label and dimension checks, normalisation, device
transfer, and an in-memory replay of File-mode channels.

``BatchSource`` gives one pass over a channel at a time. Pipe mode reads FIFO ``<channel>_<n>`` for
the n-th pass of this process. In File mode the prepared batches of a complete pass are kept (up to a
memory budget, ``SMLOCAL_LL_CACHE_MB``) and replayed in the same order, so later epochs skip parsing
and normalising without changing a single number of the result; over budget it re-reads the files,
so memory never grows with the dataset.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import scipy.sparse as sp

from smlocal.algorithms.common.hyperparameters import dimension_error
from smlocal.algorithms.linear_learner.config import BINARY, MULTICLASS
from smlocal.algorithms.linear_learner.model import PreparedBatch
from smlocal.algorithms.linear_learner.scaler import Scaler
from smlocal.arrays import ArrayModule
from smlocal.errors import CustomerError

CACHE_ENV = "SMLOCAL_LL_CACHE_MB"


def default_cache_budget(device_free: int | None = None, channels: int = 1) -> int:
    """Bytes of prepared batches a File-mode channel may keep: ``SMLOCAL_LL_CACHE_MB``, else 30 % of RAM.

    On a GPU the batches live in device memory, which is often smaller than the host's: there the
    ``channels`` cached together share half of the device's free memory (``device_free``) at most.
    """
    raw = os.environ.get(CACHE_ENV)
    if raw is not None and raw.strip():
        try:
            return max(int(float(raw) * 2 ** 20), 0)
        except ValueError:
            raise CustomerError(f"{CACHE_ENV}='{raw}' is not a number of megabytes.") from None
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 4 * 2 ** 30
    budget = int(0.3 * ram)
    if device_free is not None:
        budget = min(budget, int(0.5 * device_free) // max(channels, 1))
    return budget


def unlabeled_error(channel: str) -> CustomerError:
    return CustomerError(
        f"Labeled {channel} data required with label size equal 1. Give every record one label: the first "
        f"column of text/csv data (label_size=1), or a 'values' entry in the label map of recordIO-protobuf "
        f"records.")


def check_labels(labels: np.ndarray | None, predictor_type: str, num_classes: int, channel: str) -> np.ndarray:
    """The labels as float32 (n,), or a CustomerError naming the channel and the offending value."""
    if labels is None:
        raise unlabeled_error(channel)
    y = np.asarray(labels, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(y)):
        raise CustomerError(f"Unable to use the labels of channel '{channel}': Found missing (NaN) or infinite "
                            f"values. Please remove any missing (NaN) values in the input data.")
    if predictor_type == BINARY:
        bad = (y != 0) & (y != 1)
        if bad.any():
            raise CustomerError(
                f"Label values of channel '{channel}' must be 0 or 1 for predictor_type 'binary_classifier', found "
                f"{y[bad][0]:g}. Encode the classes as 0 and 1, or use predictor_type 'multiclass_classifier' "
                f"(labels 0..num_classes-1) or 'regressor'.")
    elif predictor_type == MULTICLASS:
        bad = (y != np.floor(y)) | (y < 0) | (y >= num_classes)
        if bad.any():
            raise CustomerError(
                f"Label values of channel '{channel}' must be integers from 0 to num_classes - 1 = "
                f"{num_classes - 1} for predictor_type 'multiclass_classifier', found {y[bad][0]:g}. Encode the "
                f"classes as 0..{num_classes - 1} or set num_classes to the number of classes.")
    return y


class Preparer:
    """Turns data-plane batches into ``PreparedBatch`` objects for one job (scaler and device fixed)."""

    def __init__(self, arrays: ArrayModule, scaler: Scaler, predictor_type: str, num_classes: int,
                 feature_dim: Any, class_weights: np.ndarray | None = None):
        self.arrays, self.scaler = arrays, scaler
        self.predictor_type, self.num_classes = predictor_type, num_classes
        self.feature_dim = feature_dim  # as configured (int or "auto"), for the error message
        self.d = scaler.dim
        xp = arrays.xp
        self._inv_std = (1.0 / scaler.std).astype(np.float32)
        self._mean = scaler.mean.astype(np.float32)
        self._scales = bool(np.any(scaler.std != 1.0))
        self._shifts = bool(np.any(scaler.mean != 0.0))
        self._inv_std_dev = xp.asarray(self._inv_std)
        self._mean_dev = xp.asarray(self._mean)
        self._class_weights = None if class_weights is None else np.asarray(class_weights, np.float32)

    def __call__(self, batch: Any, channel: str) -> PreparedBatch:
        X = batch.features
        if X.shape[1] != self.d:
            shown = self.feature_dim if self.feature_dim != "auto" else self.d
            raise dimension_error(channel, shown, int(X.shape[1]))
        y = check_labels(batch.labels, self.predictor_type, self.num_classes, channel)
        xp = self.arrays.xp
        if sp.issparse(X):
            Xs = X.tocsr().astype(np.float32, copy=True)
            if self._scales:
                Xs.data *= self._inv_std[Xs.indices]
            Xd, sparse = self.arrays.to_device(Xs), True
        else:
            Xd = self.arrays.to_device(np.asarray(X, dtype=np.float32))
            if self._shifts:
                Xd = Xd - self._mean_dev
                if self._scales:
                    Xd *= self._inv_std_dev
            elif self._scales:
                Xd = Xd * self._inv_std_dev
            sparse = False
        target = self.scaler.transform_label(y) if self.predictor_type not in (BINARY, MULTICLASS) else y
        w = None
        if self._class_weights is not None:
            w = xp.asarray(self._class_weights[y.astype(np.int64)].reshape(-1, 1))
        XT = Xd.T.tocsr() if sparse and self.arrays.is_gpu else None
        return PreparedBatch(X=Xd, y=xp.asarray(target.reshape(-1, 1)), y_raw=y, w=w, sparse=sparse, XT=XT)


def peek_rows(batches: Iterator[Any], rows: int) -> list[Any]:
    """Read batches from ``batches`` until they hold ``rows`` rows (or the iterator ends)."""
    taken, seen = [], 0
    for batch in batches:
        taken.append(batch)
        seen += len(batch)
        if seen >= rows:
            break
    return taken


class BatchSource:
    """Passes over one channel as prepared batches (see the module docstring)."""

    def __init__(self, channel: Any, name: str, batch_size: int, pipe: bool,
                 prepare: Callable[[Any, str], PreparedBatch] | None = None, cache_budget: int = 0):
        self.channel, self.name, self.batch_size, self.pipe = channel, name, batch_size, pipe
        self.prepare = prepare
        self.cache_budget = 0 if pipe else cache_budget
        self.passes_opened = 0
        self._cache: list[PreparedBatch] | None = None
        self._cache_failed = False

    def raw_pass(self) -> Iterator[Any]:
        """The data plane's batches of the next pass (FIFO ``<name>_<n>`` in Pipe mode)."""
        # read in this thread: linear learner keeps its first pass in memory, and reading ahead on a second
        # thread measured slower and bigger (binary, 1M x 50 RecordIO: 0.45-0.49x SGD against 0.44x, peak
        # RSS 336-343 MB against 296 MB: the reader thread's allocations stay in their own malloc arena)
        it = self.channel.batches(self.batch_size, self.passes_opened, read_ahead=False)
        self.passes_opened += 1
        return it

    def prepared_pass(self, raw: Iterable[Any] | None = None) -> Iterator[PreparedBatch]:
        """One pass of prepared batches. ``raw``: this pass's raw batches when already opened (peeked)."""
        if self._cache is not None:
            yield from self._cache
            return
        source = iter(raw) if raw is not None else self.raw_pass()
        caching = self.cache_budget > 0 and not self._cache_failed
        kept: list[PreparedBatch] = []
        size = 0
        with contextlib.closing(source) if hasattr(source, "close") else contextlib.nullcontext():
            for batch in source:
                prepared = self.prepare(batch, self.name)
                if caching:
                    size += prepared.nbytes
                    if size > self.cache_budget:
                        caching, kept, self._cache_failed = False, [], True
                    else:
                        kept.append(prepared)
                yield prepared
        if caching:
            self._cache = kept
