"""The linear learner on the CuPy array module trains what it trains on numpy (the built-in runs on CPU or GPU).

Skipped without CuPy or without a CUDA device; runs on the GPU machine (numpy 2.x, no MXNet, maybe no
sagemaker SDK: data is written with smlocal's own encoders).
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

cupy = pytest.importorskip("cupy")

from smlocal.algorithms.linear_learner.data import Preparer  # noqa: E402
from smlocal.algorithms.linear_learner.losses import make_loss  # noqa: E402
from smlocal.algorithms.linear_learner.model import EpochStats, ParallelLinear, initial_parameters  # noqa: E402
from smlocal.algorithms.linear_learner.optim import ModelHypers, ParallelOptimizer  # noqa: E402
from smlocal.algorithms.linear_learner.scaler import fit_scaler  # noqa: E402
from smlocal.algorithms.linear_learner.selection import criterion_for  # noqa: E402
from smlocal.artifacts.linear_learner import loads_linear_learner  # noqa: E402
from smlocal.arrays import CPU, detected_gpus, select_array_module  # noqa: E402
from smlocal.data.channels import Batch  # noqa: E402
from smlocal.data.protobuf import dense_to_records, sparse_to_records  # noqa: E402
from smlocal.data.recordio import encode_records  # noqa: E402
from tests.functional.test_linear_learner_train import train  # noqa: E402
from tests.datasets import linear_problem
from tests.helpers import channel, put_files  # noqa: E402

# the runtime's own detection decides, as it does in train(); one device is used, as by the built-ins
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(detected_gpus() == 0, reason="no CUDA device")]
GPU = select_array_module(1)


def _run(arrays, X, y, predictor, loss_name, C, sparse):
    M = 4
    scaler = fit_scaler([X], y, normalize_data=True, unbias_data=not sparse, normalize_label=predictor == "regressor",
                        unbias_label=predictor == "regressor")
    prep = Preparer(arrays, scaler, predictor, C, "auto")
    tile = lambda v: np.tile(np.asarray(v, np.float64), C)  # noqa: E731
    hypers = ModelHypers(lr=tile([0.01, 0.03, 0.1, 0.003]), wd=tile([0, 1e-4, 1e-3, 0]), l1=tile([0, 0, 1e-4, 0]),
                         momentum=tile(np.zeros(M)), step=tile(np.full(M, 50.0)), factor=tile(np.full(M, 0.99)),
                         min_lr=tile(np.full(M, 1e-5)))
    P = initial_parameters(X.shape[1], M * C, method="uniform", scale=0.07, sigma=0.01, bias=0.0, use_bias=True)
    xp = arrays.xp
    model = ParallelLinear(xp, xp.asarray(P), M, C, make_loss(loss_name),
                           ParallelOptimizer(xp, "adam", P.shape, hypers), shift=scaler.shift)
    crit = criterion_for(predictor, "accuracy", "objective")
    stats = EpochStats(xp, M, crit, binary=predictor == "binary_classifier")
    for _ in range(2):
        for i in range(0, X.shape[0], 200):
            b = prep(Batch(X[i:i + 200], y[i:i + 200]), "train")
            Sv, L = model.train_step(b)
            stats.add(Sv, b.y, L)
    return model.host_parameters(), stats.objective(), stats.criterion_values()[0]


@pytest.mark.parametrize("kind,loss_name,C", [("binary", "logistic", 1), ("multiclass", "softmax_loss", 3),
                                              ("regression", "squared_loss", 1)])
@pytest.mark.parametrize("sparse", [False, True])
def test_gpu_training_matches_cpu(kind, loss_name, C, sparse):
    X, y = linear_problem(kind, 2000, seed=3, offset=0.02)
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) > 5, X, 0).astype(np.float32))
    predictor = {"binary": "binary_classifier", "multiclass": "multiclass_classifier", "regression": "regressor"}[kind]
    cpu = _run(CPU, X, y, predictor, loss_name, C, sparse)
    gpu = _run(GPU, X, y, predictor, loss_name, C, sparse)
    np.testing.assert_allclose(gpu[0], cpu[0], rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(gpu[1], cpu[1], rtol=1e-3)
    np.testing.assert_allclose(gpu[2], cpu[2], rtol=1e-2, atol=5e-3)


@pytest.mark.parametrize("sparse", [False, True])
def test_container_train_uses_the_gpu(base, tmp_path, sparse):
    X, y = linear_problem("binary", 3000, seed=4, offset=0.02)
    data = X if not sparse else sp.csr_matrix(np.where(np.abs(X) > 5, X, 0).astype(np.float32))
    records = (sparse_to_records if sparse else dense_to_records)
    models = {}
    for gpus in ("0", "1"):
        root = tmp_path / gpus
        put_files(root, "train", encode_records(records(data[:2500], y[:2500])))
        put_files(root, "test", encode_records(records(data[2500:], y[2500:])))
        result = train(root, {"predictor_type": "binary_classifier", "mini_batch_size": "100", "num_models": "8",
                              "epochs": "5", "_num_gpus": gpus}, {"train": channel(), "test": channel()})
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        assert f"Number of GPUs being used: {gpus}" in result.stdout
        accuracy = float(re.search(r"test binary_classification_accuracy <score>=(\S+)", result.stdout).group(1))
        models[gpus] = (loads_linear_learner(result.model_file().read_bytes()), accuracy)
    assert models["1"][1] > (0.8 if sparse else 0.9)  # the sparsified problem loses information (CPU: 0.84)
    assert abs(models["1"][1] - models["0"][1]) < 0.02
