"""The shrink's batched weighted Lloyd: every trial ends where scikit-learn's KMeans ends from the same seeds."""
import numpy as np
import pytest
from sklearn.cluster import KMeans

from smlocal.algorithms.kmeans import lloyd
from smlocal.algorithms.kmeans.lloyd import batched_lloyd
from smlocal.algorithms.kmeans.seeding import greedy_kmeans_pp


def sklearn_trial(points, weights, seed_centers, max_iter, tol):
    km = KMeans(n_clusters=len(seed_centers), init=seed_centers, n_init=1, max_iter=max_iter, tol=tol)
    km.fit(points, sample_weight=weights)
    return km.cluster_centers_, km.inertia_, km.n_iter_


@pytest.mark.parametrize("n, d, k, trials, tol", [(400, 5, 8, 4, 1e-4), (1000, 50, 100, 3, 1e-4),
                                                  (300, 3, 20, 2, 0.0), (250, 4, 6, 3, 0.5)])
def test_each_trial_matches_scikit_learn_from_the_same_seeds(n, d, k, trials, tol):
    rng = np.random.default_rng(n + k)
    points = rng.normal(size=(n, d)) + rng.integers(0, 4, size=(n, 1))  # some structure, some overlap
    weights = rng.uniform(0.5, 30.0, n)
    seeds = greedy_kmeans_pp(points, weights, k, trials, seed=5)
    runs = batched_lloyd(points, weights, seeds, max_iter=300, tol=tol)
    assert runs.centers.shape == (trials, k, d) and runs.inertia.shape == (trials,)
    for t in range(trials):
        centers, inertia, iterations = sklearn_trial(points, weights, seeds[t], 300, tol)
        np.testing.assert_allclose(runs.centers[t], centers, rtol=1e-9, atol=1e-9)
        assert runs.inertia[t] == pytest.approx(inertia, rel=1e-9)
        assert runs.iterations[t] == iterations


def test_max_iter_stops_every_trial():
    rng = np.random.default_rng(3)
    points, weights = rng.normal(size=(200, 4)), np.ones(200)
    seeds = greedy_kmeans_pp(points, weights, 10, 3, seed=0)
    runs = batched_lloyd(points, weights, seeds, max_iter=2, tol=0.0)
    assert list(runs.iterations) == [2, 2, 2]
    for t in range(3):
        np.testing.assert_allclose(runs.centers[t], sklearn_trial(points, weights, seeds[t], 2, 0.0)[0], rtol=1e-9)


def test_a_center_left_empty_takes_the_farthest_point_as_scikit_learn_does():
    rng = np.random.default_rng(4)
    points = np.concatenate([rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 20.0])
    weights = rng.uniform(1.0, 2.0, 200)
    seeds = np.stack([points[[0, 0, 150]], points[[150, 3, 150]]])  # a duplicate seed gets no points
    runs = batched_lloyd(points, weights, seeds, max_iter=300, tol=1e-4)
    for t in range(2):
        centers, inertia, iterations = sklearn_trial(points, weights, seeds[t], 300, 1e-4)
        np.testing.assert_allclose(runs.centers[t], centers, rtol=1e-9, atol=1e-12)
        assert runs.inertia[t] == pytest.approx(inertia, rel=1e-9) and runs.iterations[t] == iterations
    assert len({tuple(np.round(c, 6)) for c in runs.centers[0]}) == 3  # no center stays a copy


def test_large_problems_are_assigned_in_chunks(monkeypatch):
    rng = np.random.default_rng(5)
    points, weights = rng.normal(size=(500, 6)), rng.uniform(1, 3, 500)
    seeds = greedy_kmeans_pp(points, weights, 12, 4, seed=1)
    whole = batched_lloyd(points, weights, seeds, 300, 1e-4)
    monkeypatch.setattr(lloyd, "CHUNK_ELEMENTS", 12 * 4 * 7)  # 7 rows a product
    chunked = batched_lloyd(points, weights, seeds, 300, 1e-4)
    np.testing.assert_array_equal(whole.centers, chunked.centers)
    np.testing.assert_array_equal(whole.iterations, chunked.iterations)


def test_random_seeds_are_distinct_rows_drawn_by_weight():
    from smlocal.algorithms.kmeans.streaming import random_seeds, reduce_centers

    rng = np.random.default_rng(6)
    points = rng.normal(size=(50, 3))
    weights = np.full(50, 1e-9)
    weights[:5] = 1.0  # all but five rows are (almost) never drawn
    seeds = random_seeds(points, weights, 5, trials=3, seed=2)
    for trial in seeds:
        assert sorted(map(tuple, trial)) == sorted(map(tuple, points[:5]))
    np.testing.assert_array_equal(seeds, random_seeds(points, weights, 5, trials=3, seed=2))
    red = reduce_centers(points, rng.uniform(1, 2, 50), 4, init="random", trials=3, seed=0)
    assert red.centers.shape == (4, 3) and len(red.attempts) == 3 and red.msd == min(red.attempts)
