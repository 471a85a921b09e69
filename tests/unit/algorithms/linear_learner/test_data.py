"""Channel batches -> prepared batches: label checks, normalisation, File-mode replay (real data plane)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.algorithms.linear_learner.data import (
    CACHE_ENV,
    BatchSource,
    Preparer,
    check_labels,
    default_cache_budget,
    peek_rows,
)
from smlocal.algorithms.linear_learner.scaler import Scaler
from smlocal.arrays import CPU, ArrayModule
from smlocal.data.channels import Batch, open_channel
from smlocal.environment import load_training_env
from smlocal.errors import CustomerError


@pytest.mark.parametrize("labels,predictor,fragment", [
    (None, "regressor", "Labeled validation data required with label size equal 1."),
    ([0, 1, 2], "binary_classifier", "must be 0 or 1 for predictor_type 'binary_classifier', found 2"),
    ([0, 0.5], "multiclass_classifier", "integers from 0 to num_classes - 1 = 2"),
    ([0, 3], "multiclass_classifier", "found 3"),
    ([-1, 0], "multiclass_classifier", "found -1"),
    ([1.0, np.inf], "regressor", "Found missing (NaN) or infinite values"),
])
def test_label_errors_name_the_channel(labels, predictor, fragment):
    with pytest.raises(CustomerError) as err:
        check_labels(None if labels is None else np.array(labels, np.float32), predictor, 3, "validation")
    assert fragment in str(err.value)
    assert "validation" in str(err.value)


def test_valid_labels_pass():
    np.testing.assert_array_equal(check_labels(np.array([0, 1, 1.0]), "binary_classifier", 1, "train"), [0, 1, 1])
    check_labels(np.array([0, 2, 1.0]), "multiclass_classifier", 3, "train")
    check_labels(np.array([-3.5, 1e6]), "regressor", 1, "train")


def test_preparer_dense_sparse_and_class_weights():
    scaler = Scaler(np.array([1.0, 0.0, 2.0]), np.array([2.0, 1.0, 4.0]), 10.0, 5.0)
    X = np.array([[3.0, 1.0, 2.0], [1.0, 0.0, 10.0]], np.float32)
    reg = Preparer(CPU, scaler, "regressor", 1, "auto")
    b = reg(Batch(X, np.array([20.0, 0.0], np.float32)), "train")
    np.testing.assert_allclose(b.X, [[1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    np.testing.assert_allclose(b.y, [[2.0], [-2.0]])
    np.testing.assert_allclose(b.y_raw, [20.0, 0.0])
    s = reg(Batch(sp.csr_matrix(X), np.array([1.0, 2.0], np.float32)), "train")
    assert s.sparse
    np.testing.assert_allclose(s.X.toarray(), X / scaler.std)  # sparse data is scaled, the shift is implicit
    multi = Preparer(CPU, scaler, "multiclass_classifier", 3, "auto", class_weights=np.array([1.0, 2.0, 3.0]))
    m = multi(Batch(X, np.array([2.0, 0.0], np.float32)), "train")
    np.testing.assert_allclose(m.w, [[3.0], [1.0]])
    np.testing.assert_allclose(m.y, [[2.0], [0.0]])
    with pytest.raises(CustomerError, match="hyperparameter '7' doesn't match test data dimensionality '2'"):
        Preparer(CPU, scaler, "regressor", 1, 7)(Batch(X[:, :2], np.array([1.0, 2.0])), "test")


def test_gpu_keeps_sparse_batches_transposed_too():
    scaler = Scaler(np.zeros(3), np.array([2.0, 1.0, 4.0]))
    X = sp.csr_matrix(np.array([[3.0, 0.0, 2.0], [0.0, 0.0, 8.0]], np.float32))
    on_cpu = Preparer(CPU, scaler, "binary_classifier", 1, "auto")(Batch(X, np.array([0.0, 1.0])), "train")
    assert on_cpu.XT is None
    gpu_choices = ArrayModule(np, "numpy", num_gpus=1)  # the GPU's choices on numpy arrays
    b = Preparer(gpu_choices, scaler, "binary_classifier", 1, "auto")(Batch(X, np.array([0.0, 1.0])), "train")
    assert b.XT.format == "csr"
    np.testing.assert_array_equal(b.XT.toarray(), b.X.toarray().T)
    assert b.nbytes > on_cpu.nbytes  # the cache budget counts the second copy


def test_cache_budget_on_a_gpu_shares_half_the_free_device_memory(monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    host = default_cache_budget()
    assert host > 0
    assert default_cache_budget(device_free=4 * 2 ** 30, channels=2) == min(host, 2 ** 30)
    assert default_cache_budget(device_free=2 ** 60, channels=2) == host  # a huge device: RAM decides
    monkeypatch.setenv(CACHE_ENV, "64")  # the user's figure wins
    assert default_cache_budget(device_free=2 ** 20, channels=2) == 64 * 2 ** 20


def _env(base, rows, mode="File"):
    data = base / "input" / "data" / "train"
    data.mkdir(parents=True)
    (data / "a.csv").write_text("".join(f"{r % 2},{r},{r * 2}\n" for r in range(rows)))
    cfg = base / "input" / "config"
    cfg.mkdir(parents=True)
    (cfg / "inputdataconfig.json").write_text(json.dumps({"train": {"ContentType": "text/csv",
                                                                    "TrainingInputMode": mode}}))
    return load_training_env(base)


@pytest.mark.parametrize("budget", [10 ** 9, 100])
def test_file_mode_replay_is_identical(tmp_path, budget):
    env = _env(tmp_path, 95)
    scaler = Scaler(np.zeros(2), np.ones(2))
    source = BatchSource(open_channel(env, "train"), "train", 10, pipe=False,
                         prepare=Preparer(CPU, scaler, "binary_classifier", 1, "auto"), cache_budget=budget)
    raw = source.raw_pass()
    head = peek_rows(raw, 25)
    assert sum(len(b) for b in head) == 30
    first = [b.X.copy() for b in source.prepared_pass(iter(head + list(raw)))]
    second = [b.X for b in source.prepared_pass()]
    assert len(first) == len(second) == 10
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    # within budget the second pass is served from memory: the files are not opened again
    assert source.passes_opened == (1 if budget > 100 else 2)
