"""``SMLOCAL_ALGORITHM=linear-learner container/train`` end to end against a temporary /opt/ml.

Covered: the built-in's hyperparameters, its ``model_algo-1`` ZIP, and the training-container contract
(exit codes and ``/opt/ml/output/failure``; SageMaker developer guide, "How Amazon SageMaker Provides
Training Information").

Every test runs the real entry point as a subprocess. RecordIO data is written with the sagemaker SDK's
writers; Pipe mode uses real FIFOs fed by writer threads. The saved ``model_algo-1`` is read with our
codec and checked against the data (it must work on raw features) and against the logged metrics.
"""
from __future__ import annotations

import functools
import json
import re

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.artifacts.linear_learner import loads_linear_learner
from tests.datasets import csv_bytes, linear_problem, sdk_recordio, sdk_sparse_recordio
from tests.helpers import FifoFeeder, assert_trained, channel, metrics_lines, put_files, train_builtin

RECORDIO = "application/x-recordio-protobuf"
CSV = "text/csv"
FAST = {"mini_batch_size": "100", "num_models": "8", "epochs": "6"}
train = functools.partial(train_builtin, algorithm="linear-learner")
PREDICTOR = {"binary": "binary_classifier", "multiclass": "multiclass_classifier", "regression": "regressor"}


# ---------------------------------------------------------------------------------------------- data


def encode(fmt: str, X, y) -> bytes:
    return csv_bytes(X, y) if fmt == CSV else sdk_recordio(X, y)


def model_of(result):
    return loads_linear_learner(result.model_file().read_bytes())


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
    X, y = linear_problem("binary", 3000)
    put_files(base, "train", csv_bytes(X[:1200], y[:1200]), csv_bytes(X[1200:2000], y[1200:2000]))
    put_files(base, "validation", csv_bytes(X[2000:2500], y[2000:2500]))
    put_files(base, "test", csv_bytes(X[2500:], y[2500:]))
    result = train(base, {"predictor_type": "binary_classifier", **FAST},
                   {"train": channel(CSV), "validation": channel(CSV), "test": channel(CSV)})
    assert_trained(result)
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
    X, y = linear_problem("multiclass", 3000, seed=1)
    put_files(base, "train", sdk_recordio(X[:2000], y[:2000]))
    put_files(base, "validation", sdk_recordio(X[2000:2500], y[2000:2500]))
    put_files(base, "test", sdk_recordio(X[2500:], y[2500:]))
    result = train(base, {"predictor_type": "multiclass_classifier", "num_classes": "3", "accuracy_top_k": "2",
                          **FAST}, {"train": channel(), "validation": channel(), "test": channel()})
    assert_trained(result)
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
    X, y = linear_problem("regression", 3000, seed=2)
    feeder = FifoFeeder(base / "input" / "data", {"train": sdk_recordio(X[:2000], y[:2000]),
                               "validation": sdk_recordio(X[2000:2500], y[2000:2500]),
                               "test": sdk_recordio(X[2500:], y[2500:])})
    try:
        result = train(base, {"predictor_type": "regressor", "epochs": "8", "mini_batch_size": "50",
                              "num_models": "8"},
                       {"train": channel(mode="Pipe"), "validation": channel(mode="Pipe"),
                        "test": channel(mode="Pipe")})
    finally:
        feeder.close()
    assert_trained(result)
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
    X, y = linear_problem("binary", 2500, seed=3)
    feeder = FifoFeeder(base / "input" / "data", {"train": csv_bytes(X[:2000], y[:2000]), "test": csv_bytes(X[2000:], y[2000:])})
    try:
        result = train(base, {"predictor_type": "binary_classifier", "binary_classifier_model_selection_criteria":
                              "f_beta", "f_beta": "2", **FAST}, {"train": channel(CSV, "Pipe"),
                                                                 "test": channel(CSV, "Pipe")})
    finally:
        feeder.close()
    assert_trained(result)
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
    put_files(base, "train", sdk_sparse_recordio(X[:2400], y[:2400]))
    put_files(base, "test", sdk_sparse_recordio(X[2400:], y[2400:]))
    result = train(base, {"predictor_type": "binary_classifier", "feature_dim": str(d), "unbias_data": unbias,
                          **FAST}, {"train": channel(), "test": channel()})
    assert_trained(result)
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
    X, y = linear_problem("regression", 1500, seed=6, noise=40.0)
    put_files(base, "train", sdk_recordio(X[:1200], y[:1200]))
    put_files(base, "test", sdk_recordio(X[1200:], y[1200:]))
    result = train(base, {"predictor_type": "regressor", "loss": loss, **extra, **FAST, "mini_batch_size": "50"},
                   {"train": channel(), "test": channel()})
    assert_trained(result)
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
    X, y = linear_problem("binary", 2000, seed=7)
    put_files(base, "train", sdk_recordio(X[:1500], y[:1500]))
    put_files(base, "validation", sdk_recordio(X[1500:], y[1500:]))
    result = train(base, {"predictor_type": "binary_classifier", "loss": "hinge_loss", "margin": "0.5",
                          "positive_example_weight_mult": "auto", "optimizer": "sgd", **FAST},
                   {"train": channel(), "validation": channel()})
    assert_trained(result)
    model = model_of(result)
    assert model.loss_type == "hinge_loss" and model.metrics_params["margin"] == 0.5
    assert model.scores(X[:50]).min() < 0  # raw margins, not probabilities
    best = json.loads(re.search(r"Best model found for hyperparameters: (\{.*\})", result.stdout).group(1))
    assert best["optimizer"] == "sgd" and "momentum" in best and "positive_example_weight_mult" in best
    assert best["positive_example_weight_mult"] == model.metrics_params["positive_example_weight_mult"]
    assert scores(result.stdout, "validation")["binary_classification_accuracy"] > 0.9


def test_balanced_multiclass_weights(base):
    X, y = linear_problem("multiclass", 1500, seed=8)
    put_files(base, "train", csv_bytes(X, y))
    result = train(base, {"predictor_type": "multiclass_classifier", "num_classes": "4",
                          "balance_multiclass_weights": "true", **FAST}, {"train": channel(CSV)})
    assert_trained(result)
    weights = model_of(result).metrics_params["class_weights"]
    counts = np.bincount(y.astype(int), minlength=4)
    assert len(weights) == 4 and weights[0] == pytest.approx(1500 / (4 * counts[0]))
    assert weights[3] == pytest.approx(1500 / 4)  # a class absent from the data counts once


def test_same_input_gives_the_same_model(base, tmp_path):
    X, y = linear_problem("binary", 800, seed=9)
    models = []
    for run in ("a", "b"):
        root = tmp_path / run
        put_files(root, "train", sdk_recordio(X, y))
        result = train(root, {"predictor_type": "binary_classifier", **FAST}, {"train": channel()})
        assert_trained(result)
        models.append(model_of(result))
    np.testing.assert_array_equal(models[0].weight, models[1].weight)
    np.testing.assert_array_equal(models[0].bias, models[1].bias)
    assert models[0].threshold == models[1].threshold


def test_checkpoint_resume_continues_the_same_training(base, tmp_path):
    X, y = linear_problem("regression", 1200, seed=10)
    hps = {"predictor_type": "regressor", "mini_batch_size": "100", "num_models": "4",
           "early_stopping_patience": "10"}
    # one uninterrupted job of 4 epochs
    straight = tmp_path / "straight"
    put_files(straight, "train", sdk_recordio(X, y))
    ref = train(straight, {**hps, "epochs": "4"}, {"train": channel()})
    assert_trained(ref)
    # a job stopped after 2 epochs, then restarted (asking for 4) from /opt/ml/checkpoints
    put_files(base, "train", sdk_recordio(X, y))
    (base / "checkpoints").mkdir()
    first = train(base, {**hps, "epochs": "2"}, {"train": channel()})
    assert_trained(first)
    assert "Checkpoint loading and saving are disabled." not in first.stdout
    assert (base / "checkpoints" / "linear-learner-state.npz").is_file()
    (base / "model" / "model_algo-1").unlink()
    second = train(base, {**hps, "epochs": "4"}, {"train": channel()})
    assert_trained(second)
    assert "2 epoch(s) already trained; resuming at epoch 2" in second.stdout
    epochs = [int(e) for e in re.findall(r"#early_stopping_criteria_metric: host=algo-1, epoch=(\d+)", second.stdout)]
    assert epochs == [2, 3]
    a, b = model_of(ref), model_of(second)
    np.testing.assert_allclose(a.weight, b.weight, rtol=1e-6)
    np.testing.assert_allclose(a.bias, b.bias, rtol=1e-6)
    # a finished job restarted again only writes the model
    third = train(base, {**hps, "epochs": "4"}, {"train": channel()})
    assert_trained(third)
    assert "#early_stopping_criteria_metric" not in third.stdout
    np.testing.assert_array_equal(model_of(third).weight, b.weight)
    # other hyperparameters: the state is not used
    other = train(base, {**hps, "epochs": "1", "wd": "0.01"}, {"train": channel()})
    assert_trained(other)
    assert "Ignoring the checkpoint" in other.stdout


@pytest.mark.parametrize("level", ["warning", "info"])
def test_log_level_hyperparameter(base, level):
    """Every log line is at the level the built-ins log it (metric lines too, at INFO); the ``#metrics``
    JSON lines are not log records and always appear."""
    X, y = linear_problem("binary", 400)
    put_files(base, "train", sdk_recordio(X, y))
    result = train(base, {"predictor_type": "binary_classifier", "_log_level": level, **FAST}, {"train": channel()})
    assert_trained(result)
    info = level == "info"
    assert ("Number of GPUs being used" in result.stdout) == info
    assert ("#quality_metric: host=algo-1, epoch=0, train binary_classification_cross_entropy" in result.stdout) == info
    assert '"totaltime": {"sum": ' in result.stdout
    assert result.model_file().exists()
