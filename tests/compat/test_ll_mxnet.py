"""Models trained by our linear learner, loaded the way users load the built-in's: real MXNet 1.9.1.

``tar``/``unzip`` model_algo-1, ``mx.mod.Module.load('mx-mod', 0)``, bind for inference and run the
forward pass on raw features: the outputs must equal our scores (and the metrics the job logged).
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from smlocal.artifacts.linear_learner import loads_linear_learner
from tests.functional.test_linear_learner_train import train
from tests.datasets import linear_problem as problem, sdk_recordio as recordio_dense
from tests.helpers import channel, put_files

mx = pytest.importorskip("mxnet")


def mxnet_forward(model_file: Path, target: Path, X: np.ndarray) -> np.ndarray:
    zipfile.ZipFile(io.BytesIO(model_file.read_bytes())).extractall(target)
    assert json.loads((target / "manifest.json").read_text())["mx-mod"] == "mxnet_module"
    mod = mx.mod.Module.load(str(target / "mx-mod"), 0)
    mod.bind(data_shapes=[("data", X.shape)], for_training=False)
    mod.forward(mx.io.DataBatch([mx.nd.array(X)]), is_train=False)
    return mod.get_outputs()[0].asnumpy()


@pytest.mark.parametrize("kind,extra", [
    ("binary", {}),
    ("binary", {"loss": "hinge_loss"}),
    ("multiclass", {"num_classes": "3"}),
    ("regression", {}),
])
def test_mxnet_forward_equals_our_scores(base, tmp_path, kind, extra):
    # offsets of a few standard deviations: large offsets make any float32 forward pass (MXNet's or ours)
    # lose digits to cancellation, whatever the weights
    X, y = problem(kind, 1500, seed=21, offset=0.02)
    put_files(base, "train", recordio_dense(X[:1200], y[:1200]))
    put_files(base, "test", recordio_dense(X[1200:], y[1200:]))
    predictor = {"binary": "binary_classifier", "multiclass": "multiclass_classifier", "regression": "regressor"}[kind]
    result = train(base, {"predictor_type": predictor, "mini_batch_size": "100", "num_models": "6", "epochs": "4",
                          **extra}, {"train": channel(), "test": channel()})
    assert result.returncode == 0, result.stdout[-4000:]
    model = loads_linear_learner(result.model_file().read_bytes())
    Xt = X[1200:]
    theirs = mxnet_forward(result.model_file(), tmp_path / "unzipped", Xt)
    ours = model.scores(Xt)
    assert theirs.shape == ((len(Xt), 3) if kind == "multiclass" else (len(Xt), 1))
    theirs_ = theirs.reshape(ours.shape)
    if model.predictor_type == "regressor" or model.loss_type == "hinge_loss":
        # raw linear outputs: 1e-5 relative to the size of the float32 sum (a margin near 0 has no relative digits)
        size = (np.abs(Xt) @ np.abs(model.weight) + np.abs(model.bias)).reshape(ours.shape)
        assert np.all(np.abs(theirs_ - ours) <= 1e-5 * np.maximum(np.abs(ours), size))
    else:  # probabilities
        np.testing.assert_allclose(theirs_, ours, rtol=1e-5, atol=1e-7)
    # and the job's own test metric agrees with MXNet's predictions on raw features
    if kind == "regression":
        logged = float(re.search(r"#quality_metric: host=algo-1, test mse <loss>=(\S+)", result.stdout).group(1))
        assert float(np.mean((theirs[:, 0] - y[1200:]) ** 2)) == pytest.approx(logged, rel=1e-4)
    else:
        name = "binary_classification_accuracy" if kind == "binary" else "multiclass_accuracy"
        logged = float(re.search(rf"#quality_metric: host=algo-1, test {name} <score>=(\S+)", result.stdout).group(1))
        predicted = theirs.argmax(axis=1) if kind == "multiclass" else (theirs[:, 0] > model.threshold)
        assert float(np.mean(predicted == y[1200:])) == pytest.approx(logged)
