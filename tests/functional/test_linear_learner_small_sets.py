"""Linear learner on small sets (fewer rows than the default ``mini_batch_size``: one mini-batch an epoch).

scikit-learn's iris, diabetes and breast_cancer sets, trained with the default hyperparameters through
``container/train``: the objective logged for the selected model is the saved model's own on the
training rows (the model ranked is the model kept), and the saved model is compared with
scikit-learn's exact solvers on the same rows (within 2 points of accuracy, 1.1x the MSE).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sklearn import datasets
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from smlocal.artifacts.linear_learner import LinearLearnerModel, loads_linear_learner
from tests.datasets import csv_bytes
from tests.helpers import assert_trained, channel, put_files, train_builtin

SELECTED = re.compile(r"Selected model \d+ of epoch \d+ \((\w+)=(\S+)\)")
SETS = {  # name -> (loader, hyperparameters besides feature_dim)
    "diabetes": (datasets.load_diabetes, {"predictor_type": "regressor"}),
    "iris": (datasets.load_iris, {"predictor_type": "multiclass_classifier", "num_classes": 3}),
    "breast_cancer": (datasets.load_breast_cancer, {"predictor_type": "binary_classifier"}),
}


@dataclass
class Trained:
    X: np.ndarray
    y: np.ndarray
    model: LinearLearnerModel
    criterion: str
    logged: float


@functools.cache
def _trained(name: str, root: str) -> Trained:
    """One default-hyperparameter job per set, shared by the tests of this module."""
    loader, hps = SETS[name]
    X, y = (a.astype(np.float32) for a in loader(return_X_y=True))
    base = Path(root) / name
    put_files(base, "train", csv_bytes(X, y))
    result = train_builtin(base, {"feature_dim": X.shape[1], **hps}, {"train": channel("text/csv")},
                           algorithm="linear-learner")
    assert_trained(result)
    found = SELECTED.search(result.stdout)
    assert found is not None, result.stdout[-3000:]
    return Trained(X, y, loads_linear_learner(result.model_file().read_bytes()), found.group(1),
                   float(found.group(2)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("small_sets"))
    return lambda name: _trained(name, root)


def _classifier_reference(X, y) -> float:
    return float(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y).score(X, y))


def test_diabetes_logged_objective_is_the_saved_models(trained):
    t = trained("diabetes")
    mse = float(np.mean((t.model.outputs(t.X)["score"].astype(np.float64) - t.y) ** 2))
    assert t.criterion == "mse_objective"
    assert t.logged == pytest.approx(mse, rel=1e-3)


def test_iris_logged_objective_is_the_saved_models(trained):
    t = trained("iris")
    probabilities = t.model.outputs(t.X)["score"].astype(np.float64)
    cross_entropy = float(-np.mean(np.log(probabilities[np.arange(len(t.y)), t.y.astype(int)])))
    assert t.criterion == "multiclass_cross_entropy_objective"
    assert t.logged == pytest.approx(cross_entropy, rel=1e-3)


def test_breast_cancer_logged_accuracy_is_the_saved_models(trained):
    t = trained("breast_cancer")
    accuracy = float(np.mean(t.model.outputs(t.X)["predicted_label"] == t.y))
    assert t.criterion == "sampled_accuracy"
    # ranked on a score histogram; the saved model's threshold is then tuned exactly on the same rows
    assert accuracy == pytest.approx(t.logged, abs=0.01)


@pytest.mark.parametrize("name", ["diabetes", "iris", "breast_cancer"])
def test_defaults_come_close_to_scikit_learn(trained, name):
    _defaults_close(trained(name))


def _defaults_close(t: Trained) -> None:
    out = t.model.outputs(t.X)
    if t.model.predictor_type == "regressor":
        mse = float(np.mean((out["score"].astype(np.float64) - t.y) ** 2))
        reference = float(np.mean((LinearRegression().fit(t.X, t.y).predict(t.X) - t.y) ** 2))
        assert mse <= 1.1 * reference, (mse, reference)
    else:
        accuracy = float(np.mean(out["predicted_label"] == t.y))
        assert accuracy >= _classifier_reference(t.X, t.y) - 0.02, accuracy
