"""The batched weighted k-means++ seeding of the shrink's local Lloyd trials."""
import numpy as np

from smlocal.algorithms.kmeans import seeding
from smlocal.algorithms.kmeans.seeding import greedy_kmeans_pp


def _clusters(rng, centers, per, std=0.1):
    return np.concatenate([c + std * rng.standard_normal((per, len(c))) for c in centers])


def test_seeds_are_rows_one_per_far_cluster_and_reproducible():
    rng = np.random.default_rng(0)
    truth = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
    points = _clusters(rng, truth, 50)
    weights = rng.uniform(1, 5, len(points))
    seeds = greedy_kmeans_pp(points, weights, 4, trials=5, seed=3)
    assert seeds.shape == (5, 4, 2)
    rows = {tuple(p) for p in points}
    for trial in seeds:
        assert all(tuple(s) in rows for s in trial)
        nearest_truth = np.argmin(((trial[:, None] - truth[None]) ** 2).sum(-1), axis=1)
        assert sorted(nearest_truth) == [0, 1, 2, 3]  # k-means++ spreads the seeds over the clusters
    np.testing.assert_array_equal(seeds, greedy_kmeans_pp(points, weights, 4, trials=5, seed=3))
    assert not np.array_equal(seeds[0], seeds[1])  # each trial draws on its own generator


def test_a_trial_does_not_depend_on_how_many_run_beside_it():
    rng = np.random.default_rng(1)
    points, weights = rng.standard_normal((300, 5)), rng.uniform(0.5, 2, 300)
    three = greedy_kmeans_pp(points, weights, 7, trials=3, seed=11)
    one = greedy_kmeans_pp(points, weights, 7, trials=1, seed=12)
    np.testing.assert_array_equal(three[1], one[0])


def test_the_weights_steer_the_draws():
    rng = np.random.default_rng(2)
    points = rng.standard_normal((200, 3))
    weights = np.ones(200)
    weights[17] = 1e12  # the first seed is drawn in proportion to the weights
    seeds = greedy_kmeans_pp(points, weights, 3, trials=4, seed=0)
    np.testing.assert_array_equal(seeds[:, 0], np.repeat(points[17][None], 4, axis=0))


def test_the_computed_distances_give_the_table_lookups_seeds(monkeypatch):
    rng = np.random.default_rng(3)
    points = _clusters(rng, rng.uniform(-50, 50, (6, 4)), 40)
    weights = rng.uniform(1, 3, len(points))
    from_table = greedy_kmeans_pp(points, weights, 6, trials=4, seed=5)
    monkeypatch.setattr(seeding, "CHUNK_ELEMENTS", 1000)  # no (n, n) table, one trial per chunk
    assert seeding._Distances(points).table is None
    np.testing.assert_array_equal(greedy_kmeans_pp(points, weights, 6, trials=4, seed=5), from_table)
