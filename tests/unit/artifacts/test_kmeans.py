"""KMeansModel: nearest center + Euclidean distance, against brute force and the AWS endpoint's answers."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.artifacts.kmeans import KMeansFormatError, KMeansModel, dumps_kmeans, loads_kmeans
from smlocal.artifacts.mxnet_ndarray import dumps_ndarrays, load_ndarrays

RNG = np.random.default_rng(3)


def brute_force(centers, X):
    d = np.sqrt(((X[:, None, :].astype(np.float64) - centers[None].astype(np.float64)) ** 2).sum(-1))
    return d.argmin(1), d.min(1)


def test_predict_matches_brute_force():
    centers = RNG.normal(size=(6, 4)).astype(np.float32) * 3
    X = RNG.normal(size=(200, 4)).astype(np.float32) * 3
    closest, dist = KMeansModel(centers).predict(X)
    want_idx, want_dist = brute_force(centers, X)
    assert closest.dtype == np.float32 and dist.dtype == np.float32
    np.testing.assert_array_equal(closest, want_idx.astype(np.float32))
    np.testing.assert_allclose(dist, want_dist, rtol=1e-6, atol=1e-6)


def test_distance_is_not_squared():
    model = KMeansModel(np.array([[0.0, 0.0], [10.0, 10.0]], np.float32))
    closest, dist = model.predict(np.array([[3.0, 4.0]], np.float32))
    assert closest.tolist() == [0.0] and dist.tolist() == [5.0]


def test_sparse_input_gives_the_dense_answer():
    centers = RNG.normal(size=(5, 30)).astype(np.float32)
    dense = RNG.normal(size=(50, 30)).astype(np.float32) * (RNG.random((50, 30)) < 0.2)
    model = KMeansModel(centers)
    c1, d1 = model.predict(dense)
    c2, d2 = model.predict(sp.csr_matrix(dense))
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_allclose(d1, d2, rtol=1e-5, atol=1e-6)


def test_blocks_cover_every_row(monkeypatch):
    import smlocal.artifacts.kmeans as km
    monkeypatch.setattr(km, "_BLOCK_ELEMENTS", 7)  # force several blocks of one row each
    centers = RNG.normal(size=(3, 2)).astype(np.float32)
    X = RNG.normal(size=(10, 2)).astype(np.float32)
    closest, dist = KMeansModel(centers).predict(X)
    want_idx, want_dist = brute_force(centers, X)
    np.testing.assert_array_equal(closest, want_idx)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-6)


def test_wrong_feature_count_is_refused():
    with pytest.raises(ValueError, match="expected 2 features, got 3"):
        KMeansModel(np.zeros((2, 2), np.float32)).predict(np.zeros((1, 3), np.float32))


def test_dumps_loads_round_trip_is_a_bare_list():
    model = KMeansModel(RNG.normal(size=(4, 3)))
    data = dumps_kmeans(model)
    assert isinstance(load_ndarrays(data), list)
    np.testing.assert_array_equal(loads_kmeans(data).centers, model.centers)


def test_loads_refuses_named_arrays_and_odd_shapes():
    with pytest.raises(KMeansFormatError, match="named arrays"):
        loads_kmeans(dumps_ndarrays({"s": np.ones(3, np.float32), "v": np.ones((3, 3), np.float32)}))
    with pytest.raises(KMeansFormatError, match="expected one"):
        loads_kmeans(dumps_ndarrays([np.ones(3, np.float32)]))
    with pytest.raises(KMeansFormatError, match="dtype"):
        loads_kmeans(dumps_ndarrays([np.ones((2, 3), np.int32)]))


@pytest.mark.parametrize("folder, exact", [("kmeans-popseg-zomma2", True), ("kmeans-popseg-ahmed-gaal", False)])
def test_aws_endpoint_pairs_reproduce(fixtures_dir, folder, exact):
    model = loads_kmeans((fixtures_dir / folder / "model_algo-1").read_bytes())
    replay = json.loads((fixtures_dir / folder / "replay.json").read_text())
    for pair in replay["exact_pairs"]:
        closest, dist = model.predict(np.array([pair["features"]], np.float32))
        assert float(closest[0]) == pair["expected"]["closest_cluster"]
        if exact:  # the 2020 image: bit-exact
            assert float(dist[0]) == pair["expected"]["distance_to_cluster"]
        else:  # the 2021 image summed in another order: within one float32 ulp
            assert abs(float(dist[0]) - pair["expected"]["distance_to_cluster"]) <= np.spacing(dist[0])
    rows = replay["label_only_rows"]
    closest, _ = model.predict(np.array([r["features"] for r in rows], np.float32))
    assert closest.tolist() == [float(r["closest_cluster"]) for r in rows]
