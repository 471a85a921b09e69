"""``SMLOCAL_ALGORITHM=linear-learner container/train`` end to end against a temporary /opt/ml (spec §2, §3.2, §5).

Every test runs the real entry point as a subprocess. RecordIO data is written with the sagemaker SDK's
writers; Pipe mode uses real FIFOs fed by writer threads. The saved ``model_algo-1`` is read with our
codec and checked against the data (it must work on raw features) and against the logged metrics.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.artifacts.linear_learner import loads_linear_learner
from tests.helpers import FifoFeeder, channel, put_files, run_container, write_config

RECORDIO = "application/x-recordio-protobuf"
CSV = "text/csv"
FAST = {"mini_batch_size": "100", "num_models": "8", "epochs": "6"}
PREDICTOR = {"binary": "binary_classifier", "multiclass": "multiclass_classifier", "regression": "regressor"}


# ---------------------------------------------------------------------------------------------- data


def problem(kind: str, n: int, d: int = 5, seed: int = 0, noise: float = 1.0,
            offset: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Raw features with large offsets and scales (so folding the scaler matters), labels from a linear rule."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, d))
    X = (Z * np.linspace(0.5, 40.0, d) + offset * np.linspace(-100.0, 300.0, d)).astype(np.float32)
    w = np.array([1.5, -2.0, 1.0, 0.5, -1.0, 0.8, -0.3, 1.2][:d])
    if kind == "binary":
        y = (Z @ w + 0.3 * rng.normal(size=n) > 0.2).astype(np.float32)
    elif kind == "multiclass":
        y = np.digitize(Z @ w + 0.2 * rng.normal(size=n), [-1.0, 1.0]).astype(np.float32)
    else:
        y = (50.0 * (Z @ w) + 1000.0 + noise * rng.normal(size=n)).astype(np.float32)
    return X, y


def recordio_dense(X: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    from sagemaker.amazon.common import write_numpy_to_dense_tensor

    buf = io.BytesIO()
    write_numpy_to_dense_tensor(buf, X, labels)
    return buf.getvalue()


def recordio_sparse(X: sp.csr_matrix, labels: np.ndarray) -> bytes:
    from sagemaker.amazon.common import write_spmatrix_to_sparse_tensor

    buf = io.BytesIO()
    write_spmatrix_to_sparse_tensor(buf, X, labels)
    return buf.getvalue()


def csv_bytes(X: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    rows = X if labels is None else np.column_stack([labels, X])
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows).encode()


def encode(fmt: str, X, y) -> bytes:
    return csv_bytes(X, y) if fmt == CSV else recordio_dense(X, y)


def train(base: Path, hps: dict, channels: dict, timeout: float = 180):
    write_config(base, hps, channels)
    return run_container("train", base, algorithm="linear-learner", env={"SMLOCAL_PIPE_WAIT_SECONDS": "20"},
                         timeout=timeout)


def assert_ok(result) -> None:
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    assert result.failure is None


def model_of(result):
    return loads_linear_learner(result.model_file().read_bytes())


def metrics_lines(stdout: str) -> list[dict]:
    return [json.loads(line[len("#metrics "):]) for line in stdout.splitlines() if line.startswith("#metrics ")]


def scores(stdout: str, split: str) -> dict[str, float]:
    """The final ``#<split>_score`` values, checked against their ``#quality_metric`` twins."""
    found = dict((m.group(1), float(m.group(2))) for m in
                 re.finditer(rf"#{split}_score \(algo-1\) : \('([^']+)', (\S+)\)", stdout))
    for name, value in found.items():
        tagged = re.search(rf"#quality_metric: host=algo-1, {split} {re.escape(name)} <(loss|score)>=(\S+)", stdout)
        assert tagged is not None and float(tagged.group(2)) == value, name
    return found


def accuracy(model, X, y) -> float:
    return float(np.mean(model.outputs(X)["predicted_label"] == y))


# ---------------------------------------------------------------------------------------------- success


def test_binary_csv_file_with_validation_and_test(base):
    X, y = problem("binary", 3000)
    put_files(base, "train", csv_bytes(X[:1200], y[:1200]), csv_bytes(X[1200:2000], y[1200:2000]))
    put_files(base, "validation", csv_bytes(X[2000:2500], y[2000:2500]))
    put_files(base, "test", csv_bytes(X[2500:], y[2500:]))
    result = train(base, {"predictor_type": "binary_classifier", **FAST},
                   {"train": channel(CSV), "validation": channel(CSV), "test": channel(CSV)})
    assert_ok(result)
    out = result.stdout
    assert "Checkpoint loading and saving are disabled." in out
    assert "Number of GPUs being used: 0" in out
    model = model_of(result)
    assert model.predictor_type == "binary_classifier" and model.weight.shape == (5, 1)
    # the artifact works on raw features and agrees with the logged test metrics
    test = scores(out, "test")
    assert accuracy(model, X[2500:], y[2500:]) == pytest.approx(test["binary_classification_accuracy"])
    assert test["binary_classification_accuracy"] > 0.9
    assert set(test) == {"binary_classification_cross_entropy_objective", "binary_classification_accuracy",
                         "binary_f_1.000", "precision", "recall", "roc_auc_score"}
    validation = scores(out, "validation")
    assert accuracy(model, X[2000:2500], y[2000:2500]) == pytest.approx(validation["binary_classification_accuracy"])
    # the tuned threshold is in additional-params.json and in the log
    calibrated = float(re.search(r"threshold=(\S+),", out).group(1))
    assert model.threshold == pytest.approx(calibrated) and model.metrics_params["threshold"] == model.threshold
    # one #metrics line per model and epoch with train_ and validation_ objectives
    per_model = [m for m in metrics_lines(out) if "model" in m["Dimensions"]]
    assert {(m["Dimensions"]["epoch"], m["Dimensions"]["model"]) for m in per_model} <= {
        (e, i) for e in range(6) for i in range(8)}
    assert len(per_model) % 8 == 0 and len(per_model) >= 8
    assert all(set(m["Metrics"]) == {"train_binary_classification_cross_entropy_objective",
                                     "validation_binary_classification_cross_entropy_objective"} for m in per_model)
    assert re.search(r"#quality_metric: host=algo-1, epoch=0, train binary_classification_cross_entropy_objective "
                     r"<loss>=\S+", out)
    assert re.search(r"#early_stopping_criteria_metric: host=algo-1, epoch=0, criteria=sampled_accuracy, value=", out)
    assert "Epoch 0: Loss improved. Updating best model" in out
    best = json.loads(re.search(r"Best model found for hyperparameters: (\{.*\})", out).group(1))
    assert set(best) == {"lr_scheduler_step", "wd", "optimizer", "lr_scheduler_factor", "l1", "learning_rate",
                         "lr_scheduler_minimum_lr"}
    assert "Scaling model computed with parameters: {'stdev_weight'" in out


def test_multiclass_recordio_file_with_validation_and_test(base):
    X, y = problem("multiclass", 3000, seed=1)
    put_files(base, "train", recordio_dense(X[:2000], y[:2000]))
    put_files(base, "validation", recordio_dense(X[2000:2500], y[2000:2500]))
    put_files(base, "test", recordio_dense(X[2500:], y[2500:]))
    result = train(base, {"predictor_type": "multiclass_classifier", "num_classes": "3", "accuracy_top_k": "2",
                          **FAST}, {"train": channel(), "validation": channel(), "test": channel()})
    assert_ok(result)
    model = model_of(result)
    assert model.weight.shape == (5, 3) and model.bias.shape == (1, 3)
    test = scores(result.stdout, "test")
    assert list(test) == ["multiclass_cross_entropy_objective", "multiclass_accuracy", "multiclass_top_k_accuracy_2",
                          "dcg", "macro_recall", "macro_precision", "macro_f_1.000"]
    assert accuracy(model, X[2500:], y[2500:]) == pytest.approx(test["multiclass_accuracy"])
    assert test["multiclass_accuracy"] > 0.85
    assert "criteria=multiclass_cross_entropy_objective" in result.stdout
    np.testing.assert_allclose(model.scores(X[:10]).sum(axis=1), 1.0, rtol=1e-5)


def test_regressor_recordio_pipe_with_validation_and_test(base):
    X, y = problem("regression", 3000, seed=2)
    feeder = FifoFeeder(base / "input" / "data", {"train": recordio_dense(X[:2000], y[:2000]),
                               "validation": recordio_dense(X[2000:2500], y[2000:2500]),
                               "test": recordio_dense(X[2500:], y[2500:])})
    try:
        result = train(base, {"predictor_type": "regressor", "epochs": "8", "mini_batch_size": "50",
                              "num_models": "8"},
                       {"train": channel(mode="Pipe"), "validation": channel(mode="Pipe"),
                        "test": channel(mode="Pipe")})
    finally:
        feeder.close()
    assert_ok(result)
    epochs = len(re.findall(r"#early_stopping_criteria_metric", result.stdout))
    assert feeder.served["train"] == epochs  # one FIFO per epoch, the scaler reads the first one's head
    assert feeder.served["validation"] == epochs + 1  # every epoch, then the final metrics
    assert feeder.served["test"] == 1
    model = model_of(result)
    test = scores(result.stdout, "test")
    assert list(test) == ["mse_objective", "mse", "rmse", "absolute_loss"]
    mse = float(np.mean((model.scores(X[2500:]) - y[2500:]) ** 2))
    assert mse == pytest.approx(test["mse"], rel=1e-4)
    assert test["mse"] < 3.0  # noise variance 1 on labels of scale ~100 around 1000: the label scaler is folded
    assert test["rmse"] == pytest.approx(np.sqrt(test["mse"]))


def test_binary_csv_pipe_without_validation_calibrates_on_train(base):
    X, y = problem("binary", 2500, seed=3)
    feeder = FifoFeeder(base / "input" / "data", {"train": csv_bytes(X[:2000], y[:2000]), "test": csv_bytes(X[2000:], y[2000:])})
    try:
        result = train(base, {"predictor_type": "binary_classifier", "binary_classifier_model_selection_criteria":
                              "f_beta", "f_beta": "2", **FAST}, {"train": channel(CSV, "Pipe"),
                                                                 "test": channel(CSV, "Pipe")})
    finally:
        feeder.close()
    assert_ok(result)
    epochs = len(re.findall(r"#early_stopping_criteria_metric: host=algo-1, epoch=\d+, criteria=sampled_f_beta",
                            result.stdout))
    assert epochs >= 1
    assert feeder.served["train"] == epochs + 1  # the last pass calibrates the threshold on train records
    assert "Calibrated the decision threshold on 2000 train records" in result.stdout
    test = scores(result.stdout, "test")
    assert "binary_f_2.000" in test and test["binary_classification_accuracy"] > 0.9
    assert "validation_binary" not in result.stdout


@pytest.mark.parametrize("unbias", ["auto", "true"])
def test_sparse_recordio_binary(base, unbias):
    """auto: sparse data is scaled, not shifted. true: shifted algebraically (it stays sparse), and the
    reported test metrics must still be those of the saved model."""
    rng = np.random.default_rng(4)
    n, d = 3000, 40
    X = sp.random(n, d, density=0.15, random_state=5, format="csr", dtype=np.float32) * 10
    w = rng.normal(size=d)
    y = (X @ w - np.median(X @ w) > 0).astype(np.float32)
    put_files(base, "train", recordio_sparse(X[:2400], y[:2400]))
    put_files(base, "test", recordio_sparse(X[2400:], y[2400:]))
    result = train(base, {"predictor_type": "binary_classifier", "feature_dim": str(d), "unbias_data": unbias,
                          **FAST}, {"train": channel(), "test": channel()})
    assert_ok(result)
    model = model_of(result)
    assert model.weight.shape == (d, 1)
    test = scores(result.stdout, "test")
    assert accuracy(model, X[2400:], y[2400:]) == pytest.approx(test["binary_classification_accuracy"])
    assert test["binary_classification_accuracy"] > 0.85
    mean_weight = re.search(r"'mean_weight': \n\[([^\]]*)\]", result.stdout).group(1)
    unshifted = set(mean_weight.split()) in ({"0.", "..."}, {"0."})
    assert unshifted == (unbias == "auto")


@pytest.mark.parametrize("loss,extra", [("absolute_loss", {}), ("huber_loss", {"huber_delta": "2"}),
                                        ("quantile_loss", {"quantile": "0.8"}),
                                        ("eps_insensitive_squared_loss", {"loss_insensitivity": "0.5"}),
                                        ("eps_insensitive_absolute_loss", {})])
def test_regression_losses(base, loss, extra):
    X, y = problem("regression", 1500, seed=6, noise=40.0)
    put_files(base, "train", recordio_dense(X[:1200], y[:1200]))
    put_files(base, "test", recordio_dense(X[1200:], y[1200:]))
    result = train(base, {"predictor_type": "regressor", "loss": loss, **extra, **FAST, "mini_batch_size": "50"},
                   {"train": channel(), "test": channel()})
    assert_ok(result)
    test = scores(result.stdout, "test")
    objective = list(test)[0]
    assert objective.endswith("_objective") and objective != "mse_objective"
    model = model_of(result)
    assert model.loss_type == loss
    assert test["rmse"] < 0.5 * float(np.std(y))
    if loss == "quantile_loss":
        assert model.metrics_params["quantile"] == 0.8
        assert 0.65 < float(np.mean(y[1200:] <= model.scores(X[1200:]))) < 0.95


def test_hinge_loss_and_weights(base):
    X, y = problem("binary", 2000, seed=7)
    put_files(base, "train", recordio_dense(X[:1500], y[:1500]))
    put_files(base, "validation", recordio_dense(X[1500:], y[1500:]))
    result = train(base, {"predictor_type": "binary_classifier", "loss": "hinge_loss", "margin": "0.5",
                          "positive_example_weight_mult": "auto", "optimizer": "sgd", **FAST},
                   {"train": channel(), "validation": channel()})
    assert_ok(result)
    model = model_of(result)
    assert model.loss_type == "hinge_loss" and model.metrics_params["margin"] == 0.5
    assert model.scores(X[:50]).min() < 0  # raw margins, not probabilities
    best = json.loads(re.search(r"Best model found for hyperparameters: (\{.*\})", result.stdout).group(1))
    assert best["optimizer"] == "sgd" and "momentum" in best and "positive_example_weight_mult" in best
    assert best["positive_example_weight_mult"] == model.metrics_params["positive_example_weight_mult"]
    assert scores(result.stdout, "validation")["binary_classification_accuracy"] > 0.9


def test_balanced_multiclass_weights(base):
    X, y = problem("multiclass", 1500, seed=8)
    put_files(base, "train", csv_bytes(X, y))
    result = train(base, {"predictor_type": "multiclass_classifier", "num_classes": "4",
                          "balance_multiclass_weights": "true", **FAST}, {"train": channel(CSV)})
    assert_ok(result)
    weights = model_of(result).metrics_params["class_weights"]
    counts = np.bincount(y.astype(int), minlength=4)
    assert len(weights) == 4 and weights[0] == pytest.approx(1500 / (4 * counts[0]))
    assert weights[3] == pytest.approx(1500 / 4)  # a class absent from the data counts once


def test_same_input_gives_the_same_model(base, tmp_path):
    X, y = problem("binary", 800, seed=9)
    models = []
    for run in ("a", "b"):
        root = tmp_path / run
        put_files(root, "train", recordio_dense(X, y))
        result = train(root, {"predictor_type": "binary_classifier", **FAST}, {"train": channel()})
        assert_ok(result)
        models.append(model_of(result))
    np.testing.assert_array_equal(models[0].weight, models[1].weight)
    np.testing.assert_array_equal(models[0].bias, models[1].bias)
    assert models[0].threshold == models[1].threshold


def test_checkpoint_resume_continues_the_same_training(base, tmp_path):
    X, y = problem("regression", 1200, seed=10)
    hps = {"predictor_type": "regressor", "mini_batch_size": "100", "num_models": "4",
           "early_stopping_patience": "10"}
    # one uninterrupted job of 4 epochs
    straight = tmp_path / "straight"
    put_files(straight, "train", recordio_dense(X, y))
    ref = train(straight, {**hps, "epochs": "4"}, {"train": channel()})
    assert_ok(ref)
    # a job stopped after 2 epochs, then restarted (asking for 4) from /opt/ml/checkpoints
    put_files(base, "train", recordio_dense(X, y))
    (base / "checkpoints").mkdir()
    first = train(base, {**hps, "epochs": "2"}, {"train": channel()})
    assert_ok(first)
    assert "Checkpoint loading and saving are disabled." not in first.stdout
    assert (base / "checkpoints" / "linear-learner-state.npz").is_file()
    (base / "model" / "model_algo-1").unlink()
    second = train(base, {**hps, "epochs": "4"}, {"train": channel()})
    assert_ok(second)
    assert "2 epoch(s) already trained; resuming at epoch 2" in second.stdout
    epochs = [int(e) for e in re.findall(r"#early_stopping_criteria_metric: host=algo-1, epoch=(\d+)", second.stdout)]
    assert epochs == [2, 3]
    a, b = model_of(ref), model_of(second)
    np.testing.assert_allclose(a.weight, b.weight, rtol=1e-6)
    np.testing.assert_allclose(a.bias, b.bias, rtol=1e-6)
    # a finished job restarted again only writes the model
    third = train(base, {**hps, "epochs": "4"}, {"train": channel()})
    assert_ok(third)
    assert "#early_stopping_criteria_metric" not in third.stdout
    np.testing.assert_array_equal(model_of(third).weight, b.weight)
    # other hyperparameters: the state is not used
    other = train(base, {**hps, "epochs": "1", "wd": "0.01"}, {"train": channel()})
    assert_ok(other)
    assert "Ignoring the checkpoint" in other.stdout


# ---------------------------------------------------------------------------------------------- errors


def assert_customer_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.failure is not None and result.failure.startswith("Customer Error: ")
    for fragment in fragments:
        assert fragment in result.failure, result.failure
        assert fragment in result.stdout
    assert not result.model_file().exists()
    assert not list((result.base / "model").glob("*"))


def _binary_files(base, labels=None, validation=None, test_dim=None):
    X, y = problem("binary", 600, seed=11)
    put_files(base, "train", recordio_dense(X, y if labels is None else labels))
    if validation is not None:
        put_files(base, "validation", recordio_dense(X[:100], validation))
    if test_dim is not None:
        put_files(base, "test", recordio_dense(np.ones((20, test_dim), np.float32), np.zeros(20, np.float32)))


@pytest.mark.parametrize("hps,fragments", [
    ({}, ["No value(s) were specified for 'predictor_type' which are required hyperparameter(s)"]),
    ({"predictor_type": "multiclass_classifier"}, ["No value(s) were specified for 'num_classes'"]),
    ({"predictor_type": "multiclass_classifier", "num_classes": "2"},
     ["The value '2' is not valid for the 'num_classes' hyperparameter"]),
    ({"predictor_type": "binary_classifier", "loss": "squared_loss"},
     ["The value 'squared_loss' is not valid for the 'loss' hyperparameter which accepts one of the following: "
      "'auto', 'logistic', 'hinge_loss'"]),
    ({"predictor_type": "binary_classifier", "mini_batch_size": "0"},
     ["The value '0' is not valid for the 'mini_batch_size' hyperparameter"]),
    ({"predictor_type": "binary_classifier", "use_bias": "maybe"},
     ["The value 'maybe' is not valid for the 'use_bias' hyperparameter"]),
    ({"predictor_type": "binary_classifier", "learnig_rate": "0.1"}, ["Did you mean 'learning_rate'?"]),
    ({"predictor_type": "binary_classifier", "feature_dim": "7"},
     ["Incorrect configuration or train dataset provided. The value of feature_dim hyperparameter '7' doesn't match "
      "train data dimensionality '5'."]),
])
def test_invalid_configuration(base, hps, fragments):
    _binary_files(base)
    assert_customer_error(train(base, hps, {"train": channel()}), *fragments)


def test_binary_labels_must_be_0_or_1(base):
    _binary_files(base, labels=np.arange(600, dtype=np.float32) % 3)
    result = train(base, {"predictor_type": "binary_classifier"}, {"train": channel()})
    assert_customer_error(result, "Label values of channel 'train' must be 0 or 1", "found 2")


def test_multiclass_labels_out_of_range_in_validation(base):
    X, y = problem("multiclass", 600, seed=12)
    put_files(base, "train", recordio_dense(X, y))
    put_files(base, "validation", recordio_dense(X[:100], np.full(100, 5, np.float32)))
    result = train(base, {"predictor_type": "multiclass_classifier", "num_classes": "3", **FAST},
                   {"train": channel(), "validation": channel()})
    assert_customer_error(result, "Label values of channel 'validation' must be integers from 0 to num_classes - 1 "
                                  "= 2", "found 5")


def test_unlabeled_train_data(base):
    X, _ = problem("regression", 300)
    put_files(base, "train", csv_bytes(X))
    result = train(base, {"predictor_type": "regressor"}, {"train": channel(CSV + ";label_size=0")})
    assert_customer_error(result, "Labeled train data required with label size equal 1.")


def test_test_channel_with_other_dimensionality(base):
    _binary_files(base, test_dim=3)
    result = train(base, {"predictor_type": "binary_classifier", **FAST}, {"train": channel(), "test": channel()})
    assert_customer_error(result, "The value of feature_dim hyperparameter '5' doesn't match test data "
                                  "dimensionality '3'")


def test_missing_values(base):
    X, y = problem("regression", 300)
    X[17, 2] = np.nan
    put_files(base, "train", csv_bytes(X, y))
    result = train(base, {"predictor_type": "regressor"}, {"train": channel(CSV)})
    assert_customer_error(result, "Please remove any missing (NaN) values in the input data.")


def test_missing_train_channel(base):
    X, y = problem("regression", 300)
    put_files(base, "validation", recordio_dense(X, y))
    result = train(base, {"predictor_type": "regressor"}, {"validation": channel()})
    assert_customer_error(result, "train")


@pytest.mark.parametrize("level", ["warning", "info"])
def test_log_level_hyperparameter(base, level):
    """Every log line is at the level the built-ins log it (metric lines too, at INFO); the ``#metrics``
    JSON lines are not log records and always appear."""
    X, y = problem("binary", 400)
    put_files(base, "train", recordio_dense(X, y))
    result = train(base, {"predictor_type": "binary_classifier", "_log_level": level, **FAST}, {"train": channel()})
    assert_ok(result)
    info = level == "info"
    assert ("Number of GPUs being used" in result.stdout) == info
    assert ("#quality_metric: host=algo-1, epoch=0, train binary_classification_cross_entropy" in result.stdout) == info
    assert '"totaltime": {"sum": ' in result.stdout
    assert result.model_file().exists()
