"""Weighted Lloyd iterations for every local trial at once: the shrink's "local Lloyd".

The shrink runs ``local_lloyd_num_trials`` seeded Lloyd runs on the K weighted streaming centers and keeps
the best. Each run is small (K=1000 points, k=100): scikit-learn's ``KMeans.fit`` spent ~2 ms a fit on its
input checks and set-up beside ~8 iterations of ~0.45 ms. Here the trials iterate together, so each
iteration is one float32 matrix product and one sparse product for all of them (45 -> 26 ms on one core).

A trial follows scikit-learn's ``lloyd`` step for step: assign every point to its nearest center, move each
center to the weighted mean of its points; a center left without points takes the point farthest from its
own center (which leaves that center's sums); the run stops when the labels repeat or the centers moved
(summed squared shift) no more than ``tol`` times the mean variance of the points' features, or after
``max_iter`` iterations. Its inertia is that of the final centers, each point at its nearest.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from smlocal.algorithms.kmeans.rowsplit import RowSplitter

CHUNK_ELEMENTS = 1 << 22  # (points, trials x k) scores per product: 16 MB of float32
SPLIT_SCORES = 1 << 18  # fewer scores than this per row range are not worth a thread hand-off


@dataclass(frozen=True)
class LloydRuns:
    centers: np.ndarray  # (trials, k, d) float64
    inertia: np.ndarray  # (trials,) weighted sum of squared distances to the nearest final center
    iterations: np.ndarray  # (trials,) iterations each trial ran


def absolute_tolerance(points: np.ndarray, tol: float) -> float:
    """``tol`` relative to the data, as scikit-learn scales it: times the mean of the features' variances."""
    return float(np.mean(np.var(points, axis=0)) * tol)


def assign(rows: np.ndarray, centers: np.ndarray, splitter: RowSplitter | None = None) -> np.ndarray:
    """Labels (t, n): the nearest of each trial's (t, k, d) centers for every point (row ranges on the
    ``splitter``'s threads when one is given; each row's result is the same either way).

    ``rows`` is ``[x, 1]`` (n, d+1) float32, so one product with ``[-2c, ||c||^2]`` gives
    ``||x - c||^2 - ||x||^2``, which ranks the centers (in float32, like the streaming pass; the points are
    relative to their mean, so the products stay precise).
    """
    t, k, d = centers.shape
    n = rows.shape[0]
    flat = centers.reshape(t * k, d)
    scorer = np.concatenate([-2.0 * flat, np.einsum("ij,ij->i", flat, flat)[:, None]], axis=1).T.astype(np.float32)
    labels = np.empty((t, n), dtype=np.int64)
    step = max(1, CHUNK_ELEMENTS // (t * k))

    def work(first: int, stop: int) -> None:
        for start in range(first, stop, step):
            end = min(start + step, stop)
            labels[:, start:end] = (rows[start:end] @ scorer).reshape(-1, t, k).argmin(axis=2).T

    if splitter is None:
        work(0, n)
    else:  # a few hundred rows already make a product of (t x k) columns worth a thread
        splitter.run(n, work, min_rows=max(1, SPLIT_SCORES // (t * k)))
    return labels


def distances_to_own_center(points: np.ndarray, centers: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(n,) float64 squared distance of every point to its labelled row of ``centers`` (k, d)."""
    diff = points - centers[labels]
    return np.einsum("ij,ij->i", diff, diff)


def _weighted_sums(points: np.ndarray, weights: np.ndarray, labels: np.ndarray,
                   k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per trial and center: (sum of weight * point (t, k, d), sum of weights (t, k)), one sparse product."""
    t, n = labels.shape
    ids = (labels + (np.arange(t) * k)[:, None]).ravel()
    tiled = np.tile(weights, t)
    indicator = sp.csr_matrix((tiled, (ids, np.tile(np.arange(n), t))), shape=(t * k, n))
    sums = np.asarray(indicator @ points).reshape(t, k, -1)
    return sums, np.bincount(ids, weights=tiled, minlength=t * k).reshape(t, k)


def _relocate_empty(points: np.ndarray, weights: np.ndarray, labels: np.ndarray, centers: np.ndarray,
                    sums: np.ndarray, mass: np.ndarray) -> None:
    """Give each center without points (in place) the point farthest from its own center, in order of
    distance; that point leaves the sums of the center it was assigned to."""
    for trial in np.flatnonzero((mass == 0).any(axis=1)):
        empty = np.flatnonzero(mass[trial] == 0)
        distances = distances_to_own_center(points, centers[trial], labels[trial])
        farthest = np.argsort(-distances, kind="stable")[:empty.size]
        for center, point in zip(empty, farthest):
            w, donor = weights[point], labels[trial, point]
            sums[trial, donor] -= w * points[point]
            mass[trial, donor] -= w
            sums[trial, center] = w * points[point]
            mass[trial, center] = w


def batched_lloyd(points: np.ndarray, weights: np.ndarray, seeds: np.ndarray, max_iter: int,
                  tol: float, splitter: RowSplitter | None = None) -> LloydRuns:
    """Run one weighted Lloyd trial from each of ``seeds`` (t, k, d) on ``points`` (n, d) float64, the
    assignments split over the ``splitter``'s threads when one is given."""
    points = np.asarray(points, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    centers = np.array(seeds, dtype=np.float64)
    t, k, _ = centers.shape
    rows = np.ones((points.shape[0], points.shape[1] + 1), dtype=np.float32)
    rows[:, :-1] = points
    threshold = absolute_tolerance(points, tol)
    previous = np.full((t, points.shape[0]), -1, dtype=np.int64)
    iterations = np.zeros(t, dtype=np.int64)
    running = np.arange(t)
    for _ in range(max_iter):
        if not running.size:
            break
        labels = assign(rows, centers[running], splitter)
        sums, mass = _weighted_sums(points, weights, labels, k)
        if (mass == 0).any():
            _relocate_empty(points, weights, labels, centers[running], sums, mass)
        moved = sums / mass[:, :, None]
        shift = ((moved - centers[running]) ** 2).sum(axis=(1, 2))
        repeated = (labels == previous[running]).all(axis=1)
        centers[running] = moved
        previous[running] = labels
        iterations[running] += 1
        running = running[~(repeated | (shift <= threshold))]
    labels = assign(rows, centers, splitter)
    inertia = np.array([distances_to_own_center(points, centers[trial], labels[trial]) @ weights for trial in range(t)])
    return LloydRuns(centers, inertia, iterations)
