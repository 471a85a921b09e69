"""The streaming k-means math on plain arrays: update rule, decay, sparse input, shrink."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from smlocal.algorithms.kmeans.streaming import (
    StreamingKMeans,
    assign_augmented,
    center_sums,
    init_centers,
    nearest,
    one_hot_sums,
    reduce_centers,
    squared_distances,
    on_device,
)
from smlocal.arrays import CPU, ArrayModule
from tests.datasets import blobs, blobs_with_labels


def brute_nearest(X, C):
    d = ((np.asarray(X, dtype=np.float64)[:, None, :] - np.asarray(C, dtype=np.float64)[None]) ** 2).sum(-1)
    return d.argmin(1), d.min(1)


def reference_update(centers, counts, X, half_life=0):
    """The developer guide's update rule written out one center at a time (the slow, obvious version)."""
    labels, _ = brute_nearest(X, centers)
    centers = centers.astype(np.float64).copy()
    counts = counts.astype(np.float64).copy()
    if half_life:
        counts *= 0.5 ** (len(X) / half_life)
    for j in range(len(centers)):
        mine = X[labels == j]
        if len(mine) == 0:
            continue
        p = len(mine) / (counts[j] + len(mine))
        centers[j] = (1 - p) * centers[j] + p * mine.mean(0)
        counts[j] += len(mine)
    return centers, counts


def test_nearest_and_center_sums_match_brute_force():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 7)).astype(np.float32)
    C = rng.normal(size=(12, 7)).astype(np.float32)
    labels, dist = nearest(CPU, X, C, (C * C).sum(1))
    want_labels, want_dist = brute_nearest(X, C)
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-4, atol=1e-4)
    sums = center_sums(CPU, X, labels, 12)
    want = np.stack([X[labels == j].astype(np.float64).sum(0) for j in range(12)])
    np.testing.assert_allclose(sums, want, rtol=1e-5, atol=1e-4)


def test_one_hot_sums_match_the_indicator_product(monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 6)).astype(np.float32)
    labels = rng.integers(0, 9, 500)
    norms = (X.astype(np.float64) ** 2).sum(1)
    monkeypatch.setattr("smlocal.algorithms.kmeans.streaming.ONE_HOT_ELEMENTS", 9 * 64)  # 8 blocks of 64 rows
    sums, weighted = one_hot_sums(CPU, X, labels, 9, norms)
    np.testing.assert_allclose(sums, center_sums(CPU, X, labels, 9), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(weighted, np.bincount(labels, weights=norms, minlength=9), rtol=1e-12)
    assert one_hot_sums(CPU, None, labels, 9, norms)[0] is None


@pytest.mark.parametrize("sparse", [False, True])
def test_gpu_branch_takes_the_same_steps(sparse):
    """The GPU's choices (one-hot sums, whole-batch scoring) run here on numpy arrays: same counts, same
    centers. tests/gpu runs them with CuPy."""
    X = blobs([[0, 0, 0, 0], [6, 6, 0, 0], [0, 6, 6, -6]], 3000, seed=4, std=1.0)
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0).astype(np.float32))
    gpu_choices = ArrayModule(np, "numpy", num_gpus=1)
    assert gpu_choices.is_gpu
    states = []
    for arrays in (CPU, gpu_choices):
        state = StreamingKMeans.start(init_centers(X[:500], 12, "kmeans++", seed=0), arrays, 0, shift=not sparse)
        for start in range(0, 3000, 500):
            state.update(on_device(arrays, X[start:start + 500], force_dense=not sparse))
        states.append((*state.host_state(), state.within_ssd()))
    (c_cpu, n_cpu, ssd_cpu), (c_gpu, n_gpu, ssd_gpu) = states
    np.testing.assert_array_equal(n_gpu, n_cpu)
    np.testing.assert_allclose(c_gpu, c_cpu, rtol=1e-5, atol=1e-5)
    assert ssd_gpu == pytest.approx(ssd_cpu, rel=1e-5)


@pytest.mark.parametrize("half_life", [0, 250])
def test_update_follows_the_weighted_rule_batch_after_batch(half_life):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(1000, 5)).astype(np.float32)
    init = X[:20].astype(np.float64)
    state = StreamingKMeans.start(init, CPU, half_life=half_life)
    ref_c, ref_n = init.copy(), np.zeros(20)
    for start in range(0, 1000, 128):  # uneven last batch on purpose
        batch = X[start:start + 128]
        state.update(on_device(CPU, batch, True))
        ref_c, ref_n = reference_update(ref_c, ref_n, batch, half_life)
        np.testing.assert_allclose(state.counts, ref_n, rtol=1e-12)
        np.testing.assert_allclose(state.host_state()[0], ref_c, rtol=1e-5, atol=1e-5)
    assert state.rows == state.total_rows == 1000
    if half_life == 0:
        assert state.counts.sum() == 1000
    else:
        assert state.counts.sum() < 1000


def test_first_update_moves_each_center_to_the_mean_of_its_points():
    X = np.array([[0, 0], [2, 0], [10, 10], [12, 10]], dtype=np.float32)
    state = StreamingKMeans.start(np.array([[0.0, 0.0], [10.0, 10.0]]))
    state.update(X)
    np.testing.assert_allclose(state.host_state()[0], [[1, 0], [11, 10]])
    np.testing.assert_array_equal(state.counts, [2, 2])
    # a second batch of equal size moves each center half way (p = 2 / (2 + 2))
    state.update(np.array([[3, 0], [3, 0], [13, 14], [13, 14]], dtype=np.float32))
    np.testing.assert_allclose(state.host_state()[0], [[2, 0], [12, 12]])
    # scatter of each center's points around it: (0,0),(2,0),(3,0),(3,0) around (2,0) and
    # (10,10),(12,10),(13,14),(13,14) around (12,12)
    assert state.within_ssd() == pytest.approx((4 + 0 + 1 + 1) + (8 + 4 + 5 + 5))


def test_decay_halves_old_weight_after_half_life_points():
    state = StreamingKMeans.start(np.array([[0.0], [100.0]]), half_life=4)
    state.update(np.array([[0.0]] * 4, dtype=np.float32))
    assert list(state.counts) == [4, 0]
    state.update(np.array([[1.0]] * 4, dtype=np.float32))
    # the 4 old points now weigh 2: p = 4 / (2 + 4)
    assert list(state.counts) == [6, 0]
    np.testing.assert_allclose(state.host_state()[0][0], [4 / 6])


def test_sparse_input_gives_the_same_result_as_dense():
    rng = np.random.default_rng(3)
    dense = sp.random(2000, 40, density=0.1, random_state=4, format="csr", dtype=np.float32).toarray()
    dense[:, :3] += rng.integers(0, 3, (2000, 1)) * 5  # some structure
    csr = sp.csr_matrix(dense)
    runs = []
    for force_dense, data in ((True, dense), (False, csr)):
        init = init_centers(data[:500], 30, "kmeans++", seed=7)
        state = StreamingKMeans.start(init, shift=force_dense)
        for start in range(0, 2000, 500):
            x = on_device(CPU, data[start:start + 500], force_dense)
            assert sp.issparse(x) == (not force_dense)
            state.update(x)
        runs.append((state.host_state(), state.within_ssd()))
    (c_dense, n_dense), sse_dense = runs[0]
    (c_sparse, n_sparse), sse_sparse = runs[1]
    np.testing.assert_array_equal(n_dense, n_sparse)
    np.testing.assert_allclose(c_dense, c_sparse, rtol=1e-5, atol=1e-5)
    assert sse_sparse == pytest.approx(sse_dense, rel=1e-4)
    # and the metric distances agree for both layouts
    d1 = squared_distances(CPU, dense, c_dense)
    d2 = squared_distances(CPU, csr, c_dense)
    np.testing.assert_allclose(d1, d2, rtol=1e-6, atol=1e-6)


def test_init_centers_draws_distinct_rows_reproducibly():
    X = np.arange(200, dtype=np.float32).reshape(100, 2)
    a = init_centers(X, 10, "random", seed=5)
    b = init_centers(X, 10, "random", seed=5)
    np.testing.assert_array_equal(a, b)
    assert len({tuple(r) for r in a}) == 10
    assert all(tuple(r) in {tuple(x) for x in X} for r in a)
    c = init_centers(X, 10, "random", seed=6)
    assert not np.array_equal(a, c)
    pp = init_centers(X, 10, "kmeans++", seed=5)
    assert pp.shape == (10, 2) and all(tuple(r) in {tuple(x) for x in X} for r in pp)
    np.testing.assert_array_equal(pp, init_centers(X, 10, "kmeans++", seed=5))
    with pytest.raises(ValueError):
        init_centers(X, 101, "random", seed=0)


def test_reduce_uses_the_weights_and_keeps_the_best_attempt():
    # two heavy centers and many light ones: the heavy ones must win their clusters
    centers = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [11.0, 0.0]])
    weights = np.array([1000.0, 1.0, 1.0, 1000.0])
    seen = []
    red = reduce_centers(centers, weights, 2, trials=3, seed=0, on_attempt=lambda i, m: seen.append((i, m)))
    got = red.centers[np.argsort(red.centers[:, 0])]
    np.testing.assert_allclose(got, [[1 / 1001, 0], [10 + 1000 / 1001, 0]], rtol=1e-5)
    assert red.centers.dtype == np.float32 and red.centers.shape == (2, 2)
    assert [i for i, _ in seen] == [0, 1, 2] and red.attempts == [m for _, m in seen]
    assert red.msd == min(red.attempts)
    # weighted msd: each light center is 1 - 1/1001 away from its heavy partner's cluster mean
    d_light = (1 - 1 / 1001) ** 2
    d_heavy = (1 / 1001) ** 2
    assert red.msd == pytest.approx(2 * (d_light + 1000 * d_heavy) / 2002, rel=1e-6)


def test_reduce_ignores_unused_centers_and_tops_up_when_few_are_used():
    centers = np.array([[0.0], [5.0], [100.0], [7.0]])
    weights = np.array([3.0, 0.0, 2.0, 0.0])
    red = reduce_centers(centers, weights, 2)
    assert sorted(red.centers[:, 0]) == [0.0, 100.0] and red.msd == 0.0
    red = reduce_centers(centers, weights, 3)
    assert sorted(red.centers[:, 0]) == [0.0, 5.0, 100.0]
    red = reduce_centers(np.array([[0.0], [1.0], [50.0]]), np.array([1.0, 1.0, 0.0]), 1, trials=2)
    np.testing.assert_allclose(red.centers, [[0.5]])  # the unused center at 50 plays no part


def test_pipeline_recovers_well_separated_blobs_deterministically():
    truth = np.random.default_rng(9).uniform(-50, 50, (6, 8))
    X = blobs(truth, 12000, seed=10, std=0.5)

    def run():
        state = StreamingKMeans.start(init_centers(X[:1000], 60, "random", seed=0))
        for start in range(0, len(X), 1000):
            state.update(X[start:start + 1000])
        c, w = state.host_state()
        red = reduce_centers(c, w, 6, seed=0)
        return red, state.within_ssd() / w.sum() + red.msd

    (a, estimate), (b, _) = run(), run()
    np.testing.assert_array_equal(a.centers, b.centers)
    rows, cols = linear_sum_assignment(((a.centers[:, None] - truth[None]) ** 2).sum(-1))
    assert np.abs(a.centers[rows] - truth[cols]).max() < 0.1
    msd = squared_distances(CPU, X, a.centers).mean()
    assert msd == pytest.approx(8 * 0.25, rel=0.05)  # d * std^2
    assert estimate == pytest.approx(msd, rel=0.02)  # the train msd needs no second pass


def test_squared_distances_are_exact_despite_a_large_offset():
    rng = np.random.default_rng(11)
    X = (rng.normal(size=(500, 20)) + 1e4).astype(np.float32)
    C = (rng.normal(size=(5, 20)) + 1e4).astype(np.float32)
    _, want = brute_nearest(X, C)
    np.testing.assert_allclose(squared_distances(CPU, X, C), want, rtol=1e-6)


def test_training_stays_precise_for_data_far_from_the_origin():
    truth = np.random.default_rng(12).uniform(-3, 3, (4, 10)) + 5e4
    X, which = blobs_with_labels(truth, 4000, seed=13, std=0.3)
    state = StreamingKMeans.start(init_centers(X[:500], 20, "kmeans++", seed=0))
    for start in range(0, 4000, 500):
        state.update(X[start:start + 500])
    # per-point distances at assignment time are of the order d * std^2 = 0.9, not float32 noise of ||x||^2
    assert state.within_ssd() / state.counts.sum() < 2.0
    c, w = state.host_state()
    red = reduce_centers(c, w, 4, seed=0)
    msd = squared_distances(CPU, X, red.centers).mean()
    assert msd == pytest.approx(10 * 0.09, rel=0.1)


def test_within_ssd_is_the_decayed_weighted_scatter():
    rng = np.random.default_rng(14)
    X = rng.normal(size=(600, 3)).astype(np.float32) * 4
    state = StreamingKMeans.start(X[:6].astype(np.float64), half_life=200)
    weights, labels_all = [], []
    for start in range(0, 600, 100):
        labels, _ = brute_nearest(X[start:start + 100], state.host_state()[0])
        state.update(X[start:start + 100])
        weights = [w * 0.5 ** (100 / 200) for w in weights] + [1.0] * 100
        labels_all.extend(labels)
    w, lab = np.array(weights), np.array(labels_all)
    centers = state.host_state()[0]
    want = sum((w[lab == j] * ((X[lab == j] - centers[j]) ** 2).sum(1)).sum() for j in range(6))
    np.testing.assert_allclose(state.counts, [w[lab == j].sum() for j in range(6)], rtol=1e-9)
    assert state.within_ssd() == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("block", [None, 1 << 12, 100])
def test_blocked_assignment_matches_brute_force(block):
    rng = np.random.default_rng(15)
    X = rng.normal(size=(1000, 6)).astype(np.float32)
    C = rng.normal(size=(300, 6)).astype(np.float32)
    rows = np.hstack([X, np.ones((1000, 1), np.float32)])
    scorer_t = np.ascontiguousarray(np.hstack([-2 * C, (C * C).sum(1, keepdims=True)]).T)
    labels = assign_augmented(CPU, rows, scorer_t, block)
    np.testing.assert_array_equal(labels, brute_nearest(X, C)[0])
