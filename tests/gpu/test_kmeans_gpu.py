"""The streaming k-means core on the CuPy array module gives what it gives on numpy (the built-in uses one GPU).

Skipped without CuPy or without a CUDA device; runs on the GPU machine (numpy 2.x, no MXNet).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

cupy = pytest.importorskip("cupy")

from smlocal.algorithms.kmeans.streaming import (  # noqa: E402
    StreamingKMeans,
    init_centers,
    reduce_centers,
    squared_distances,
    on_device,
)
from smlocal.arrays import CPU, detected_gpus, select_array_module  # noqa: E402

# the runtime's own detection decides, as it does in train(); one device is used, as by the built-ins
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(detected_gpus() == 0, reason="no CUDA device")]
GPU = select_array_module(1)


def data(n=6000, d=20, k=5, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(-20, 20, (k, d))
    return (truth[rng.integers(0, k, n)] + rng.normal(0, 1, (n, d))).astype(np.float32)


def stream(arrays, X, force_dense=True, half_life=0, batch=1000):
    init = init_centers(X[:batch], 50, "kmeans++", seed=0)
    state = StreamingKMeans.start(init, arrays, half_life, shift=force_dense or not sp.issparse(X))
    for start in range(0, X.shape[0], batch):
        state.update(on_device(arrays, X[start:start + batch], force_dense))
    return state


def test_select_backend_picks_the_gpu():
    arrays = select_array_module("auto")
    assert arrays.name == "cupy" and arrays.num_gpus == 1
    assert select_array_module(0).name == "numpy"


def assert_same_clustering(cpu, gpu, X, k=5):
    """cuBLAS and the CPU's BLAS round differently, so a point near a tie between two of the 50 stream
    centers may go either way: the stream's counts and centers agree closely, not bit for bit; what the
    job keeps (the k reduced centers and their quality) agrees tightly."""
    c_cpu, n_cpu = cpu.host_state()
    c_gpu, n_gpu = gpu.host_state()
    assert isinstance(c_gpu, np.ndarray) and isinstance(n_gpu, np.ndarray)
    assert n_gpu.sum() == n_cpu.sum() == X.shape[0]  # one pass, no decay: every row counted once
    assert np.abs(n_gpu - n_cpu).sum() <= 0.02 * X.shape[0]  # a few near-tie rows move, no more
    assert gpu.within_ssd() == pytest.approx(cpu.within_ssd(), rel=1e-3)
    red_cpu, red_gpu = reduce_centers(c_cpu, n_cpu, k, seed=0), reduce_centers(c_gpu, n_gpu, k, seed=0)
    order = [int(np.argmin(((red_cpu.centers - c) ** 2).sum(1))) for c in red_gpu.centers]
    assert sorted(order) == list(range(k))
    np.testing.assert_allclose(red_gpu.centers, red_cpu.centers[order], atol=1e-2)
    return red_cpu


def test_dense_stream_matches_numpy():
    X = data()
    cpu, gpu = stream(CPU, X), stream(GPU, X)
    assert isinstance(gpu.centers, cupy.ndarray)
    red = assert_same_clustering(cpu, gpu, X)
    d_cpu = squared_distances(CPU, X, red.centers)
    d_gpu = squared_distances(GPU, GPU.to_device(X), red.centers)
    np.testing.assert_allclose(d_gpu, d_cpu, rtol=1e-5, atol=1e-4)


def test_decayed_stream_matches_numpy():
    X = data()
    cpu, gpu = stream(CPU, X, half_life=2500), stream(GPU, X, half_life=2500)
    n_cpu, n_gpu = cpu.host_state()[1], gpu.host_state()[1]
    assert n_gpu.sum() == pytest.approx(n_cpu.sum(), rel=1e-9)  # the decay depends on batch sizes alone
    assert gpu.within_ssd() == pytest.approx(cpu.within_ssd(), rel=1e-2)


def test_sparse_stream_matches_numpy():
    X = sp.random(4000, 60, density=0.05, random_state=3, format="csr", dtype=np.float32)
    X = (X + sp.csr_matrix((np.full(4000, 15.0, np.float32), (np.arange(4000), np.arange(4000) % 3 * 20)),
                           shape=(4000, 60))).tocsr()
    cpu, gpu = stream(CPU, X, force_dense=False), stream(GPU, X, force_dense=False)
    red = assert_same_clustering(cpu, gpu, X, k=3)
    d_cpu = squared_distances(CPU, X, red.centers)
    d_gpu = squared_distances(GPU, on_device(GPU, X, False), red.centers)
    np.testing.assert_allclose(d_gpu, d_cpu, rtol=1e-5, atol=1e-4)


def test_the_same_dense_job_gives_the_same_bits_on_the_gpu():
    """One-hot products (cuBLAS) instead of cuSPARSE's transposed products and atomic bincounts."""
    X = data(seed=7)
    first, second = stream(GPU, X).host_state(), stream(GPU, X).host_state()
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_train_job_uses_the_gpu(tmp_path):
    pytest.importorskip("google.protobuf")
    from smlocal.algorithms import kmeans
    from smlocal.logs import setup_logging
    from smlocal.environment import load_training_env
    from tests.helpers import write_config

    X = data(n=3000, d=8, k=4, seed=5)
    folder = tmp_path / "input" / "data" / "train"
    folder.mkdir(parents=True)
    (folder / "train.csv").write_text("".join(",".join(f"{v:.6f}" for v in row) + "\n" for row in X))
    write_config(tmp_path, {"k": 4, "feature_dim": 8, "mini_batch_size": 500},
                 {"train": {"ContentType": "text/csv;label_size=0", "TrainingInputMode": "File"}})
    log_path = tmp_path / "log.txt"
    with open(log_path, "w") as stream:
        setup_logging("info", stream)
        kmeans.train(load_training_env(tmp_path))
    log = log_path.read_text()
    assert "Number of GPUs being used: 1" in log
    from smlocal.artifacts.mxnet_ndarray import load_ndarrays

    centers = load_ndarrays(tmp_path / "model" / "model_algo-1")[0]
    assert centers.shape == (4, 8) and centers.dtype == np.float32
