"""``SMLOCAL_ALGORITHM=kmeans container/train`` end to end against a temporary /opt/ml.

Covered: the built-in's hyperparameters, its ``model_algo-1`` (an MXNet NDArray list), and the
training-container contract (exit codes and ``/opt/ml/output/failure``; SageMaker developer guide,
"How Amazon SageMaker Provides Training Information").

Every test runs the real entry point as a subprocess. Data is written with the sagemaker SDK's RecordIO
writers or as CSV; Pipe mode uses real FIFOs fed from writer threads.
"""
from __future__ import annotations

import functools
import re

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.artifacts.mxnet_ndarray import load_ndarrays
from tests.datasets import blobs, csv_bytes, sdk_recordio, sdk_sparse_recordio
from tests.helpers import (
    FifoFeeder,
    assert_customer_error,
    assert_found_centers,
    assert_trained,
    channel,
    metrics_lines,
    put_files,
    run_container,
    train_builtin,
    write_config,
)

RECORDIO = "application/x-recordio-protobuf"
TEST_MSD = re.compile(r"#quality_metric: host=\S+, test msd <loss>=(\S+)")
TEST_SSD = re.compile(r"#quality_metric: host=\S+, test ssd <loss>=(\S+)")
TRAIN_MSD = re.compile(r"#quality_metric: host=\S+, train msd <loss>=(\S+)")
TRUTH = np.array([[0, 0, 0, 0], [10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 10, 10]], dtype=np.float64)
train = functools.partial(train_builtin, algorithm="kmeans", timeout=120)


def model_centers(result) -> np.ndarray:
    arrays = load_ndarrays(result.model_file())
    assert isinstance(arrays, list) and len(arrays) == 1
    assert arrays[0].dtype == np.float32
    return arrays[0]


def msd_of(X: np.ndarray, centers: np.ndarray) -> float:
    d = ((X.astype(np.float64)[:, None, :] - centers.astype(np.float64)[None]) ** 2).sum(-1)
    return float(d.min(1).mean())


# ---------------------------------------------------------------------------------------------- success


def test_file_mode_recordio_without_test_channel(base):
    X = blobs(TRUTH, 6000, seed=1, std=0.5)
    put_files(base, "train", sdk_recordio(X[:2500]), sdk_recordio(X[2500:]))
    result = train(base, {"k": 4, "feature_dim": 4, "mini_batch_size": 1000}, {"train": channel()})
    assert_trained(result)
    centers = model_centers(result)
    assert_found_centers(centers, TRUTH, 0.2)
    out = result.stdout
    for line in ("Create Store: local", "Test data is not provided.",
                 "shrinking 40 centers into 4", "local kmeans attempt #9. Current mean square distance",
                 "finished shrinking process. Mean Square Distance = ",
                 "#progress_metric: host=algo-1, completed 100.0 % of epochs",
                 "#throughput_metric: host=algo-1, train throughput=", "Final configuration: {"):
        assert line in out, line
    assert re.search(r"nvidia-smi identified \d+ GPUs\.", out)
    assert re.search(r"Number of GPUs being used: [01]\n", out)  # 1 only where CuPy sees a GPU
    assert "Batch size" not in out  # the first batch was full
    train_msd = float(TRAIN_MSD.search(out).group(1))
    assert train_msd == pytest.approx(msd_of(X, centers), rel=0.05)
    assert not TEST_MSD.search(out)
    metrics = metrics_lines(out)
    assert all(m["Dimensions"]["Algorithm"] == "AWS/KMeansWebscale" for m in metrics)
    metas = [m["Dimensions"].get("Meta") for m in metrics]
    assert metas.count("init_train_data_iter") == 1 and metas.count("training_data_iter") == 1
    epoch_iter = next(m for m in metrics if m["Dimensions"].get("Meta") == "training_data_iter")
    assert epoch_iter["Metrics"]["Total Records Seen"]["sum"] == 6000
    assert epoch_iter["Metrics"]["Total Batches Seen"]["sum"] == 6
    timers = {name for m in metrics for name in m["Metrics"]}
    assert {"initialize.time", "update.time", "_shrink.time", "finalize.time", "model.serialize.time",
            "totaltime", "setuptime", "epochs"} <= timers


def test_file_mode_csv_with_labels_and_a_test_channel(base):
    X, T = blobs(TRUTH, 3000, seed=2, std=0.5), blobs(TRUTH, 700, seed=3, std=0.5)
    labels = np.arange(len(X)) % 3  # ignored by k-means
    put_files(base, "train", csv_bytes(X, labels))
    put_files(base, "test", csv_bytes(T))
    result = train(base, {"k": 4, "feature_dim": 4, "eval_metrics": '["msd", "ssd"]', "init_method": "kmeans++"},
                   {"train": channel("text/csv;label_size=1"), "test": channel("text/csv; label_size=0")})
    assert_trained(result)
    centers = model_centers(result)
    assert_found_centers(centers, TRUTH, 0.2)
    out = result.stdout
    # the whole data set is smaller than one mini-batch
    assert "Batch size 5000 is bigger than the first batch data. Effective batch size used to initialize is 3000" in out
    msd, ssd = float(TEST_MSD.search(out).group(1)), float(TEST_SSD.search(out).group(1))
    assert msd == pytest.approx(msd_of(T, centers), rel=1e-6)
    assert ssd == pytest.approx(msd_of(T, centers) * len(T), rel=1e-6)
    assert f"#test_score (algo-1) : ('msd', {msd!r})" in out
    assert f"#test_score (algo-1) : ('ssd', {ssd!r})" in out
    assert out.index("('msd'") < out.index("('ssd'")  # in eval_metrics order
    assert "Test data is not provided." not in out
    assert any(m["Dimensions"].get("Meta") == "test_data_iter" for m in metrics_lines(out))


def test_pipe_mode_recordio_two_epochs_with_test_channel(base):
    X, T = blobs(TRUTH, 4000, seed=4, std=0.5), blobs(TRUTH, 500, seed=5, std=0.5)
    data = sdk_recordio(X)
    write_config(base, {"k": 4, "feature_dim": 4, "epochs": 2, "mini_batch_size": 500},
                 {"train": channel(mode="Pipe"), "test": channel(mode="Pipe")})
    feeder = FifoFeeder(base / "input" / "data", {"train": [data, data], "test": [sdk_recordio(T)]})
    try:
        result = run_container("train", base, env={"SMLOCAL_PIPE_WAIT_SECONDS": "20"}, timeout=120)
    finally:
        feeder.close()
    assert_trained(result)
    centers = model_centers(result)
    assert_found_centers(centers, TRUTH, 0.2)
    assert float(TEST_MSD.search(result.stdout).group(1)) == pytest.approx(msd_of(T, centers), rel=1e-6)
    assert "completed 50.0 % of epochs" in result.stdout and "completed 100.0 % of epochs" in result.stdout
    epochs = [m for m in metrics_lines(result.stdout) if m["Dimensions"].get("Meta") == "training_data_iter"]
    assert [m["Dimensions"]["epoch"] for m in epochs] == [0, 1]
    assert epochs[-1]["Metrics"]["Total Records Seen"]["sum"] == 8000
    assert epochs[-1]["Metrics"]["Reset Count"]["sum"] == 1


def test_pipe_mode_csv(base):
    X = blobs(TRUTH, 2000, seed=6, std=0.5)
    write_config(base, {"k": 4, "feature_dim": 4, "mini_batch_size": 300},
                 {"train": channel("text/csv;label_size=0", mode="Pipe")})
    feeder = FifoFeeder(base / "input" / "data", {"train": [csv_bytes(X)]})
    try:
        result = run_container("train", base, env={"SMLOCAL_PIPE_WAIT_SECONDS": "20"}, timeout=120)
    finally:
        feeder.close()
    assert_trained(result)
    assert_found_centers(model_centers(result), TRUTH, 0.2)


@pytest.mark.parametrize("force_dense", ["true", "false"])
def test_sparse_recordio_dense_or_sparse_math(base, force_dense):
    rng = np.random.default_rng(7)
    which = rng.integers(0, 3, 3000)
    X = sp.random(3000, 30, density=0.05, random_state=8, format="lil", dtype=np.float32)
    for j in range(3):
        X[np.flatnonzero(which == j), j * 10] = 20.0  # three clusters on three coordinates
    X = X.tocsr()
    put_files(base, "train", sdk_sparse_recordio(X))
    put_files(base, "test", sdk_sparse_recordio(X[:400]))
    result = train(base, {"k": 3, "feature_dim": 30, "force_dense": force_dense, "mini_batch_size": 1000},
                   {"train": channel(), "test": channel()})
    assert_trained(result)
    centers = model_centers(result)
    assert centers.shape == (3, 30)
    assert sorted(np.round(centers[:, [0, 10, 20]].max(0)).tolist()) == [20.0, 20.0, 20.0]
    dense_test = X[:400].toarray()
    assert float(TEST_MSD.search(result.stdout).group(1)) == pytest.approx(msd_of(dense_test, centers), rel=1e-5)


def test_same_input_gives_the_same_model(base, tmp_path):
    X = blobs(TRUTH, 3000, seed=9, std=0.5)
    models = []
    for run in range(2):
        root = tmp_path / f"run{run}"
        for sub in ("input/config", "input/data", "model", "output/data"):
            (root / sub).mkdir(parents=True)
        put_files(root, "train", sdk_recordio(X))
        result = train(root, {"k": 4, "feature_dim": 4, "mini_batch_size": 700, "half_life_time_size": 1000},
                       {"train": channel()})
        assert_trained(result)
        models.append(result.model_file().read_bytes())
    assert models[0] == models[1]


# ----------------------------------------------------------------------------------------------- errors


def test_feature_dim_not_matching_train_data(base):
    put_files(base, "train", sdk_recordio(blobs(TRUTH, 500, seed=10, std=0.5)))
    result = train(base, {"k": 4, "feature_dim": 5}, {"train": channel()})
    assert_customer_error(result, "Incorrect configuration or train dataset provided. The value of feature_dim "
                          "hyperparameter '5' doesn't match train data dimensionality '4'. Please set feature_dim "
                          "to the number of features in train dataset.")


def test_feature_dim_not_matching_test_data(base):
    put_files(base, "train", sdk_recordio(blobs(TRUTH, 500, seed=11, std=0.5)))
    put_files(base, "test", csv_bytes(np.ones((10, 3), dtype=np.float32)))
    result = train(base, {"k": 4, "feature_dim": 4},
                   {"train": channel(), "test": channel("text/csv;label_size=0")})
    assert_customer_error(result, "Incorrect configuration or test dataset provided. The value of feature_dim "
                          "hyperparameter '4' doesn't match test data dimensionality '3'.")


def test_plain_csv_of_feature_dim_columns_hints_at_label_size_0(base):
    put_files(base, "train", csv_bytes(blobs(TRUTH, 300, seed=12, std=0.5)))  # 4 columns, no label
    result = train(base, {"k": 4, "feature_dim": 4}, {"train": channel("text/csv")})
    assert_customer_error(result, "doesn't match train data dimensionality '3'",
                          "text/csv takes the first column as the label",
                          "ContentType 'text/csv;label_size=0'")


def test_huge_feature_dim_is_refused_before_allocating(base):
    put_files(base, "train", csv_bytes(blobs(TRUTH, 30, seed=12, std=0.5)))
    result = train(base, {"k": 4, "feature_dim": 10**9}, {"train": channel("text/csv;label_size=0")})
    assert_customer_error(result, "feature_dim=1000000000 with k=4 x extra_center_factor=10 centers and "
                          "mini_batch_size=5000 dense rows need about", "GiB of memory, more than the")


def test_nan_values(base):
    text = csv_bytes(blobs(TRUTH, 300, seed=12, std=0.5)).decode().splitlines()
    text[123] = "1.0,nan,2.0,3.0"
    put_files(base, "train", ("\n".join(text) + "\n").encode())
    result = train(base, {"k": 4, "feature_dim": 4}, {"train": channel("text/csv;label_size=0")})
    assert_customer_error(result, "Found missing (NaN) values. Please remove any missing (NaN) values in the input data.",
                          "'train'")


def test_empty_train_channel(base):
    put_files(base, "train", b"")
    result = train(base, {"k": 4, "feature_dim": 4}, {"train": channel()})
    assert_customer_error(result, "'train'")


def test_missing_train_channel(base):
    put_files(base, "test", sdk_recordio(blobs(TRUTH, 100, seed=13, std=0.5)))
    result = train(base, {"k": 4, "feature_dim": 4}, {"test": channel()})
    assert_customer_error(result, "'train'")


def test_unsupported_content_type(base):
    put_files(base, "train", sdk_recordio(blobs(TRUTH, 100, seed=14, std=0.5)))
    result = train(base, {"k": 4, "feature_dim": 4}, {"train": channel("application/json")})
    assert_customer_error(result, "Unable to read data channel 'train'. Requested content-type is 'application/json'. "
                          "Please verify the data matches the requested content-type.")


def test_data_not_matching_its_content_type(base):
    put_files(base, "train", csv_bytes(blobs(TRUTH, 100, seed=15, std=0.5)))
    result = train(base, {"k": 4, "feature_dim": 4}, {"train": channel(RECORDIO)})
    assert_customer_error(result, "Unable to read data channel 'train'. Requested content-type is "
                          f"'{RECORDIO}'. Please verify the data matches the requested content-type.")


def test_k_larger_than_the_number_of_records(base):
    put_files(base, "train", sdk_recordio(blobs(TRUTH, 7, seed=16, std=0.5)))
    result = train(base, {"k": 8, "feature_dim": 4}, {"train": channel()})
    assert_customer_error(result, "k hyperparameter '8'", "'7'")


def test_missing_and_invalid_hyperparameters(base):
    put_files(base, "train", sdk_recordio(blobs(TRUTH, 100, seed=17, std=0.5)))
    result = train(base, {}, {"train": channel()})
    assert_customer_error(result, "No value(s) were specified for 'k', 'feature_dim' which are required hyperparameter(s)")
    (base / "output" / "failure").unlink()
    result = train(base, {"k": 1, "feature_dim": 4}, {"train": channel()})
    assert_customer_error(result, "The value '1' is not valid for the 'k' hyperparameter")
