"""The pure math of web-scale streaming k-means, free of I/O and logging.

The algorithm is the one the SageMaker developer guide page "How K-Means Clustering Works" describes: a
modified web-scale (mini-batch) k-means after D. Sculley, "Web-Scale K-Means Clustering" (WWW 2010).

Three steps, each testable on arrays alone:

1. ``init_centers``: K = k * extra_center_factor centers drawn from the first mini-batch (random rows or
   k-means++ seeding, both with a fixed seed so a job is reproducible).
2. ``StreamingKMeans.update``: one mini-batch. Every point goes to its nearest center; a center holding
   n_old (decayed) points that receives n_new points with mean m becomes ``(1-p)*c + p*m`` with
   ``p = n_new / (n_old + n_new)`` -- so after a pass every center is the count-weighted mean of the points
   it took. Assignments cost one matrix product per batch: ``[x, 1] @ [-2c, ||c||^2]^T`` gives
   ``||x - c||^2 - ||x||^2`` directly (the ``||x||^2`` term does not change the argmin), reduced by argmin
   in cache-sized row blocks. Per-center sums are one sparse indicator-matrix product (one-hot dense
   products on a GPU, whose results then repeat bit for bit). No Python loop
   runs over points or centers, and CSR input stays sparse. Dense batches are shifted by a fixed origin
   (the mean of the initial centers) on the way: distances do not change, but ``||x||^2`` no longer
   dwarfs them, so float32 products stay precise for data far from zero.
3. ``reduce_centers``: the K weighted centers are shrunk to k by weighted Lloyd (local Lloyd), best of
   ``trials`` seeded runs by weighted inertia; the k-means++ seeds of all trials are drawn together
   (``seeding``) and the trials iterate together (``lloyd``).

Every array operation goes through an ``ArrayModule`` (numpy or CuPy); the only device-specific choices
are which sparse module builds the indicator matrix (``sparse_module``), how per-center sums are taken
(``one_hot_sums`` on a GPU) and the score block size (``block_elements``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from smlocal.algorithms.kmeans.lloyd import batched_lloyd
from smlocal.algorithms.kmeans.seeding import greedy_kmeans_pp
from smlocal.arrays import CPU, ArrayModule

RANDOM = "random"
KMEANS_PP = "kmeans++"


def sparse_module(arrays: ArrayModule) -> Any:
    """scipy.sparse for numpy, cupyx.scipy.sparse for CuPy (same constructors and products)."""
    if arrays.name == "cupy":
        import cupyx.scipy.sparse as cusparse

        return cusparse
    return sp


def is_sparse(x: Any) -> bool:
    return sp.issparse(x) or type(x).__module__.startswith("cupyx.scipy.sparse")


def on_device(arrays: ArrayModule, features: Any, force_dense: bool) -> Any:
    """A batch's features as float32 on the device: dense array, or CSR when sparse input stays sparse."""
    if sp.issparse(features):
        if force_dense:
            return arrays.to_device(np.asarray(features.toarray(), dtype=np.float32))
        return arrays.to_device(features.tocsr().astype(np.float32, copy=False))
    return arrays.xp.asarray(features, dtype=arrays.xp.float32)


def row_sq_norms(arrays: ArrayModule, x: Any) -> Any:
    """||x_i||^2 per row, float32, for dense or CSR ``x``."""
    xp = arrays.xp
    if is_sparse(x):
        return xp.asarray(x.multiply(x).sum(axis=1), dtype=xp.float32).ravel()
    return xp.einsum("ij,ij->i", x, x)


def nearest(arrays: ArrayModule, x: Any, centers32: Any, center_norms: Any,
            row_norms: Any = None) -> tuple[Any, Any]:
    """(index of the nearest center, squared distance to it) for every row of ``x``.

    One (n, K) matrix product; the distance is ``||x||^2 - 2 x.c + ||c||^2`` clamped at 0.
    ``row_norms`` (``||x||^2``) is computed when not given.
    """
    xp = arrays.xp
    scores = x @ centers32.T  # dense (n, K) for dense and for CSR x
    scores = xp.asarray(scores)
    scores *= -2.0
    scores += center_norms[None, :]
    labels = xp.argmin(scores, axis=1)
    best = scores[xp.arange(scores.shape[0]), labels]
    best += row_sq_norms(arrays, x) if row_norms is None else row_norms
    return labels, xp.maximum(best, 0.0)


def center_sums(arrays: ArrayModule, x: Any, labels: Any, num_centers: int) -> Any:
    """Sum of the rows assigned to each center, (K, d) float64: indicator (K, n) @ x in one product."""
    xp = arrays.xp
    n = labels.shape[0]
    # CSC (K, n) with one 1 per column (row = the point's center): built as is, no sorting
    indicator = sparse_module(arrays).csc_matrix(
        (xp.ones(n, dtype=xp.float32), labels.astype(xp.int32), xp.arange(n + 1, dtype=xp.int32)),
        shape=(num_centers, n),
    )
    sums = indicator @ x
    if is_sparse(sums):
        sums = sums.toarray()
    return xp.asarray(sums, dtype=xp.float64)


ONE_HOT_ELEMENTS = 1 << 24  # one-hot block per product: 64 MB as float32


def one_hot_sums(arrays: ArrayModule, x: Any, labels: Any, num_centers: int,
                 weights: Any = None) -> tuple[Any, Any]:
    """(K, d) sums of dense rows per center and (K,) sums of ``weights``, float64, as one-hot products.

    The GPU's choice: cuSPARSE's transposed products and CuPy's weighted ``bincount`` (atomic adds)
    round differently from run to run, while a dense product (cuBLAS) gives the same bits every run, so
    the same job trains the same model. ``x=None`` gives the weight sums alone (sparse batches).
    """
    xp = arrays.xp
    n = int(labels.shape[0])
    ids = xp.arange(num_centers, dtype=labels.dtype)
    sums = None if x is None else xp.zeros((num_centers, x.shape[1]), dtype=xp.float64)
    weighted = None if weights is None else xp.zeros(num_centers, dtype=xp.float64)
    step = max(1, ONE_HOT_ELEMENTS // max(num_centers, 1))
    for start in range(0, n, step):  # blocks in a fixed order: the total is as repeatable as each product
        one_hot = labels[start:start + step, None] == ids[None, :]
        if sums is not None:
            sums += one_hot.T.astype(xp.float32) @ x[start:start + step]
        if weighted is not None:
            weighted += one_hot.T.astype(xp.float64) @ weights[start:start + step]
    return sums, weighted


def init_centers(features: np.ndarray | sp.csr_matrix, num_centers: int, method: str, seed: int) -> np.ndarray:
    """``num_centers`` initial centers (float64, on the host) from the rows of ``features``.

    ``random``: distinct rows drawn uniformly. ``kmeans++``: scikit-learn's k-means++ seeding.
    """
    n = features.shape[0]
    if num_centers > n:
        raise ValueError(f"cannot draw {num_centers} centers from {n} rows")
    if method == KMEANS_PP:
        from sklearn.cluster import kmeans_plusplus

        data = features.astype(np.float64) if not sp.issparse(features) else features.tocsr().astype(np.float64)
        centers, _ = kmeans_plusplus(data, n_clusters=num_centers, random_state=seed)
        return np.asarray(centers, dtype=np.float64)
    if method != RANDOM:
        raise ValueError(f"unknown init method {method!r}")
    rows = np.sort(np.random.default_rng(seed).choice(n, size=num_centers, replace=False))
    chosen = features[rows]
    if sp.issparse(chosen):
        chosen = chosen.toarray()
    return np.asarray(chosen, dtype=np.float64)


# Fewer rows than this per product and packing the centers' side costs more than the scores' cache misses
# save (1,000 streaming centers, one thread: 131-row blocks 8.0 ms a 5,000-row batch, 512-row 6.6 ms)
MIN_BLOCK_ROWS = 512


def block_elements(arrays: ArrayModule) -> int | None:
    """Size of the (rows, K) score block per product: cache-sized on a CPU, the whole batch on a GPU."""
    return None if arrays.is_gpu else 1 << 17  # 512 KB of float32 scores


def assign_augmented(arrays: ArrayModule, rows: Any, scorer_t: Any, block: int | None) -> Any:
    """argmin over centers of ``[x, 1] @ [-2c, ||c||^2]^T``, i.e. of ``||x - c||^2 - ||x||^2``.

    ``rows`` is (n, d+1) with a last column of ones and ``scorer_t`` is (d+1, K), so the product already
    holds the scores; it runs in row blocks of about ``block`` scores so each block is reduced by argmin
    while it is still in cache.
    """
    xp = arrays.xp
    n, num_centers = rows.shape[0], scorer_t.shape[1]
    step = n if block is None else max(MIN_BLOCK_ROWS, block // max(num_centers, 1))
    if step >= n:
        return xp.argmin(rows @ scorer_t, axis=1)
    labels = xp.empty(n, dtype=xp.int64)
    for start in range(0, n, step):
        labels[start:start + step] = xp.argmin(rows[start:start + step] @ scorer_t, axis=1)
    return labels


@dataclass
class StreamingKMeans:
    """The streaming state: K centers, their (decayed) point counts, and what the stream has shown.

    ``half_life`` > 0 makes old weight decay so that it halves after ``half_life`` further points.
    Besides the counts, each center keeps the (equally decayed) sum of ``||x||^2`` of its points, so the
    scatter of the points around their center is known without a second pass (``within_ssd``).
    ``rows`` counts the current epoch's rows (``reset_epoch``), ``total_rows`` all of them. With an
    ``origin`` (dense data), centers are kept relative to it and every batch is shifted by it first.
    """

    centers: Any  # (K, d) float64 on the device, relative to origin
    counts: Any  # (K,) float64 on the device
    sq_sums: Any = None  # (K,) float64: sum of ||x - origin||^2 of each center's points (decayed)
    arrays: ArrayModule = CPU
    half_life: int = 0
    origin: Any = None  # (d,) float64 on the device, or None (sparse data keeps its zeros)
    rows: int = 0
    total_rows: int = 0
    _centers32: Any = field(default=None, repr=False)
    _norms: Any = field(default=None, repr=False)
    _scorer_t: Any = field(default=None, repr=False)  # (d+1, K) float32: [-2c, ||c||^2]^T
    _origin32: Any = field(default=None, repr=False)
    _buffer: Any = field(default=None, repr=False)  # reused (n, d+1) float32 rows [x - origin, 1]
    splitter: Any = field(default=None, repr=False)  # a RowSplitter: dense rows assigned on several threads

    @classmethod
    def start(cls, initial_centers: np.ndarray, arrays: ArrayModule = CPU, half_life: int = 0,
              shift: bool = True) -> "StreamingKMeans":
        """Begin from ``initial_centers``; ``shift=False`` for sparse data (no origin, zeros kept)."""
        xp = arrays.xp
        centers = arrays.to_device(np.asarray(initial_centers, dtype=np.float64))
        origin = centers.mean(axis=0) if shift else xp.zeros(centers.shape[1], dtype=xp.float64)
        state = cls(centers=centers - origin,
                    counts=xp.zeros(centers.shape[0], dtype=xp.float64),
                    sq_sums=xp.zeros(centers.shape[0], dtype=xp.float64), arrays=arrays,
                    half_life=int(half_life), origin=origin if shift else None)
        state._origin32 = origin.astype(xp.float32)
        state._refresh()
        return state

    @property
    def num_centers(self) -> int:
        return int(self.centers.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centers.shape[1])

    def _refresh(self) -> None:
        xp = self.arrays.xp
        self._centers32 = self.centers.astype(xp.float32)
        self._norms = xp.einsum("ij,ij->i", self._centers32, self._centers32)
        self._scorer_t = xp.ascontiguousarray(
            xp.concatenate([-2.0 * self._centers32, self._norms[:, None]], axis=1).T)

    def _assign_dense(self, x: Any) -> tuple[Any, Any, Any]:
        """(rows ``[x - origin, 1]`` (n, d+1) float32 in a reused buffer, nearest-center labels, ``||x - origin||^2``),
        computed over row ranges in parallel when a ``splitter`` is set."""
        xp = self.arrays.xp
        n, d = x.shape[0], self.dim
        if self._buffer is None or self._buffer.shape[0] < n:
            self._buffer = xp.empty((n, d + 1), dtype=xp.float32)
            self._buffer[:, d] = 1.0
        rows = self._buffer[:n]
        if is_sparse(x):  # a sparse batch in a dense job
            x = xp.asarray(x.toarray())
        labels, norms = xp.empty(n, dtype=xp.int64), xp.empty(n, dtype=xp.float32)
        block = block_elements(self.arrays)

        def work(start: int, stop: int) -> None:
            part = rows[start:stop]
            xp.subtract(x[start:stop], self._origin32, out=part[:, :d])
            labels[start:stop] = assign_augmented(self.arrays, part, self._scorer_t, block)
            norms[start:stop] = xp.einsum("ij,ij->i", part[:, :d], part[:, :d])

        if self.splitter is None or self.arrays.is_gpu:
            work(0, n)
        else:
            self.splitter.run(n, work)
        return rows, labels, norms

    def _sums(self, data: Any, labels: Any, row_norms: Any) -> tuple[Any, Any]:
        """Per center: the sum of ``data``'s rows assigned to it and the sum of their ``row_norms``."""
        xp, K = self.arrays.xp, self.num_centers
        row_norms = row_norms.astype(xp.float64)
        if not self.arrays.is_gpu:
            return center_sums(self.arrays, data, labels, K), xp.bincount(labels, weights=row_norms, minlength=K)
        if is_sparse(data):  # sparse rows stay with cuSPARSE; the norms' sums are made repeatable
            return center_sums(self.arrays, data, labels, K), one_hot_sums(self.arrays, None, labels, K,
                                                                             row_norms)[1]
        return one_hot_sums(self.arrays, data, labels, K, row_norms)

    def reset_epoch(self) -> None:
        self.rows = 0

    def update(self, x: Any) -> None:
        """One mini-batch (``x`` already on the device, float32 dense or CSR): assign, then move centers."""
        xp = self.arrays.xp
        n = int(x.shape[0])
        if n == 0:
            return
        d = self.dim
        if is_sparse(x) and self.origin is None:  # sparse math: the data keeps its zeros
            row_norms = row_sq_norms(self.arrays, x)
            labels, _ = nearest(self.arrays, x, self._centers32, self._norms, row_norms)
            sums, new_sq = self._sums(x, labels, row_norms)
        else:
            rows, labels, row_norms = self._assign_dense(x)
            sums, new_sq = self._sums(rows, labels, row_norms)
            sums = sums[:, :d]
        new_counts = xp.bincount(labels, minlength=self.num_centers).astype(xp.float64)  # integers: exact
        old, old_sq = self.counts, self.sq_sums
        if self.half_life > 0:
            keep = 0.5 ** (n / self.half_life)
            old, old_sq = old * keep, old_sq * keep
        total = old + new_counts
        taken = new_counts > 0
        p = xp.where(taken, new_counts / xp.where(taken, total, 1.0), 0.0)
        batch_means = sums / xp.maximum(new_counts, 1.0)[:, None]
        self.centers = (1.0 - p)[:, None] * self.centers + p[:, None] * batch_means
        self.counts = total
        self.sq_sums = old_sq + new_sq
        self._refresh()
        self.rows += n
        self.total_rows += n

    def within_ssd(self) -> float:
        """Weighted sum of squared distances of the points to the center that took them.

        Each center is the weighted mean of its points, so their scatter is
        ``sum ||x||^2 - n ||c||^2`` (exact without a second pass; relative to the origin for precision).
        """
        xp = self.arrays.xp
        norms = xp.einsum("ij,ij->i", self.centers, self.centers)
        return float(xp.maximum(self.sq_sums - self.counts * norms, 0.0).sum())

    def host_state(self) -> tuple[np.ndarray, np.ndarray]:
        """(centers (K, d) float64 in data coordinates, counts (K,) float64) on the host."""
        centers = self.centers if self.origin is None else self.centers + self.origin
        return self.arrays.to_host(centers), self.arrays.to_host(self.counts)


@dataclass(frozen=True)
class Reduction:
    centers: np.ndarray  # (k, d) float32
    msd: float  # weighted mean squared distance of the K centers to the k ones (best attempt)
    attempts: list[float]  # msd of every attempt, in order


def reduce_centers(centers: np.ndarray, weights: np.ndarray, k: int, init: str = KMEANS_PP, max_iter: int = 300,
                   tol: float = 1e-4, trials: int = 10, seed: int = 0,
                   on_attempt: Callable[[int, float], None] | None = None, splitter: Any = None) -> Reduction:
    """Shrink K weighted centers to ``k`` by weighted Lloyd (``lloyd``); keep the best of ``trials``.

    Centers that never received a point (weight 0) carry no information and are left out. When no more
    than ``k`` weighted centers remain there is nothing to shrink: they are kept, topped up with unused
    centers to make ``k`` rows. The trials run relative to the points' mean, so distances keep their
    precision far from zero.
    """
    centers = np.asarray(centers, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    used = weights > 0
    if int(used.sum()) <= k:
        kept = np.concatenate([centers[used], centers[~used]])[:k]
        if kept.shape[0] < k:
            raise ValueError(f"only {kept.shape[0]} centers to shrink into {k}")
        return Reduction(kept.astype(np.float32), 0.0, [])
    w = weights[used]
    origin = centers[used].mean(axis=0)
    points = centers[used] - origin
    total = float(w.sum())
    # k-means++ seeds of every trial in one batched pass (scikit-learn's per-trial seeding cost more than
    # the Lloyd iterations themselves)
    draw = greedy_kmeans_pp if init == KMEANS_PP else random_seeds
    seeds = draw(points, w, k, trials, seed)
    runs = batched_lloyd(points, w, seeds, max_iter, tol, splitter)
    attempts = [float(inertia) / total for inertia in runs.inertia]
    if on_attempt is not None:
        for trial, msd in enumerate(attempts):
            on_attempt(trial, msd)
    best = int(np.argmin(attempts))  # the first of equals
    return Reduction((runs.centers[best] + origin).astype(np.float32), attempts[best], attempts)


def random_seeds(points: np.ndarray, weights: np.ndarray, k: int, trials: int, seed: int) -> np.ndarray:
    """(trials, k, d): ``k`` distinct rows per trial, drawn with probability proportional to their weight
    (trial ``t`` from a generator seeded ``seed + t``)."""
    p = weights / weights.sum()
    return np.stack([points[np.random.default_rng(seed + trial).choice(points.shape[0], size=k, replace=False, p=p)]
                     for trial in range(trials)])


def squared_distances(arrays: ArrayModule, x: Any, centers: np.ndarray) -> np.ndarray:
    """Squared distance (float64, host) of every row of ``x`` to its nearest center, for the metrics.

    The nearest center comes from the fast float32 product (dense rows shifted by the centers' mean
    first, as in training); the distance is then recomputed in float64.
    """
    xp = arrays.xp
    c64 = arrays.to_device(np.asarray(centers, dtype=np.float64))
    if is_sparse(x):
        c32 = c64.astype(xp.float32)
        labels, _ = nearest(arrays, x, c32, xp.einsum("ij,ij->i", c32, c32))
        chosen = c64[labels]
        x64 = x.astype(xp.float64)
        xx = xp.asarray(x64.multiply(x64).sum(axis=1)).ravel()
        xc = xp.asarray(x64 @ c64.T)[xp.arange(labels.shape[0]), labels]
        d = xx - 2.0 * xc + xp.einsum("ij,ij->i", chosen, chosen)
    else:
        origin = c64.mean(axis=0)
        rel32 = (c64 - origin).astype(xp.float32)
        labels, _ = nearest(arrays, x - origin.astype(xp.float32), rel32, xp.einsum("ij,ij->i", rel32, rel32))
        diff = x.astype(xp.float64) - c64[labels]
        d = xp.einsum("ij,ij->i", diff, diff)
    return arrays.to_host(xp.maximum(d, 0.0))
