"""Weighted greedy k-means++ seeding for every local Lloyd trial at once.

The shrink runs ``local_lloyd_num_trials`` (10 by default) seeded Lloyd runs on the K weighted streaming
centers. scikit-learn seeds each run on its own, one small distance call (and its input checks) per
chosen center: with K=1000 and k=100 that was half of a whole job's time. Here the trials advance
together, so each step is one matrix product for all of them.

The method is the greedy k-means++ of Arthur & Vassilvitskii (2007) as scikit-learn applies it: the first
seed is drawn with probability proportional to the weights, every later one is the best (lowest
weighted potential) of ``2 + int(log k)`` candidates drawn with probability proportional to
``weight * distance^2`` to the nearest seed so far. Trial ``t`` draws from its own generator seeded
``seed + t``, so a trial's seeds do not depend on how many trials run beside it.
"""
from __future__ import annotations

import numpy as np

CHUNK_ELEMENTS = 1 << 22  # (trials, candidates, K) distances per product: 32 MB of float64


def greedy_kmeans_pp(points: np.ndarray, weights: np.ndarray, k: int, trials: int, seed: int) -> np.ndarray:
    """(trials, k, d) float64 seeds drawn from the rows of ``points`` (weights > 0)."""
    n = points.shape[0]
    candidates = 2 + int(np.log(k))
    per_chunk = max(1, CHUNK_ELEMENTS // (candidates * n))
    out = []
    for first in range(0, trials, per_chunk):
        ids = _seed_ids(points, weights, k, list(range(first, min(trials, first + per_chunk))), seed, candidates)
        out.append(points[ids])
    return np.concatenate(out)


class _Distances:
    """Squared distances from chosen rows to every point: looked up in the full (n, n) table when it is
    small (K up to ~2000, the usual case), computed per request otherwise."""

    def __init__(self, points: np.ndarray):
        norms = np.einsum("ij,ij->i", points, points)[:, None]
        ones = np.ones_like(norms)
        # [x, |x|^2, 1] @ [-2y, 1, |y|^2]^T = |x|^2 - 2 x.y + |y|^2: the whole distance in one product
        self.left = np.concatenate([points, norms, ones], axis=1)
        self.right_t = np.ascontiguousarray(np.concatenate([-2.0 * points, ones, norms], axis=1).T)
        n = points.shape[0]
        self.table = self._compute(np.arange(n)) if n * n <= CHUNK_ELEMENTS else None

    def _compute(self, rows: np.ndarray) -> np.ndarray:
        d = self.left[rows] @ self.right_t
        return np.maximum(d, 0.0, out=d)

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), n), a fresh array the caller may overwrite."""
        return self._compute(rows) if self.table is None else self.table[rows]


def _seed_ids(points: np.ndarray, weights: np.ndarray, k: int, trial_ids: list[int], seed: int,
              candidates: int) -> np.ndarray:
    """(len(trial_ids), k) row indices of the seeds of those trials."""
    n, t = points.shape[0], len(trial_ids)
    rngs = [np.random.default_rng(seed + trial) for trial in trial_ids]
    distances = _Distances(points)
    p = weights / weights.sum()
    chosen = np.empty((t, k), dtype=np.int64)
    chosen[:, 0] = [rng.choice(n, p=p) for rng in rngs]
    closest = distances.rows(chosen[:, 0])  # (t, n)
    rows = np.arange(t)
    for c in range(1, k):
        cumulative = np.cumsum(weights * closest, axis=1)  # (t, n)
        draws = np.stack([rng.random(candidates) for rng in rngs]) * cumulative[:, -1:]
        # one search for every trial: trial i's sums and draws are lifted past trial i-1's
        lift = (np.arange(t) * (2.0 * float(cumulative[:, -1].max()) + 1.0))[:, None]
        picks = np.searchsorted((cumulative + lift).ravel(), (draws + lift).ravel()).reshape(t, candidates)
        picks = np.minimum(picks - rows[:, None] * n, n - 1)  # (t, candidates)
        dist = distances.rows(picks.ravel()).reshape(t, candidates, n)
        np.minimum(dist, closest[:, None, :], out=dist)
        best = np.argmin(dist @ weights, axis=1)  # the candidate leaving the lowest potential
        chosen[:, c] = picks[rows, best]
        closest = dist[rows, best]
    return chosen
