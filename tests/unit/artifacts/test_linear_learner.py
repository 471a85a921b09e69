"""The linear-learner zip: layout, round trip, score semantics, and the AWS artifacts."""
from __future__ import annotations

import io
import json
import tarfile
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.artifacts.linear_learner import (
    LinearLearnerFormatError, LinearLearnerModel, dumps_linear_learner, loads_linear_learner,
)
from smlocal.artifacts.mxnet_ndarray import load_ndarrays
from smlocal.artifacts.symbol_json import head_op_of, linear_symbol_json

RNG = np.random.default_rng(11)


def make(predictor_type, C=1, loss=None, threshold=0.5, d=5):
    return LinearLearnerModel(RNG.normal(size=(d, C)).astype(np.float32), RNG.normal(size=(1, C)),
                              predictor_type, threshold, loss)


def test_zip_layout_matches_the_builtin():
    data = dumps_linear_learner(make("binary_classifier", threshold=0.36), date_time=(2024, 1, 2, 3, 4, 6))
    zf = zipfile.ZipFile(io.BytesIO(data))
    infos = zf.infolist()
    assert [i.filename for i in infos] == ["mx-mod-0000.params", "mx-mod-symbol.json", "manifest.json",
                                           "additional-params.json"]
    assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
    assert all(i.date_time == (2024, 1, 2, 3, 4, 6) for i in infos)
    assert json.loads(zf.read("manifest.json")) == {"mx-mod": "mxnet_module", "additional-params.json": "json",
                                                    "version": 1}
    extra = json.loads(zf.read("additional-params.json"))
    assert list(extra) == ["threshold", "loss_type", "predictor_type", "metrics_params"]
    assert extra["threshold"] == 0.36 and extra["loss_type"] == "logistic"
    assert extra["metrics_params"]["threshold"] == 0.36 and extra["metrics_params"]["accuracy_top_k"] == 3
    params = load_ndarrays(zf.read("mx-mod-0000.params"))
    assert list(params) == ["arg:fc0_weight", "arg:fc0_bias"]
    assert params["arg:fc0_weight"].shape == (5, 1) and params["arg:fc0_bias"].shape == (1, 1)
    assert head_op_of(zf.read("mx-mod-symbol.json").decode()) == "LogisticRegressionOutput"


@pytest.mark.parametrize("ptype, C, loss, head", [
    ("regressor", 1, None, "LinearRegressionOutput"),
    ("binary_classifier", 1, None, "LogisticRegressionOutput"),
    ("binary_classifier", 1, "hinge_loss", "SVMOutput"),
    ("multiclass_classifier", 3, None, "SoftmaxOutput"),
])
def test_round_trip(ptype, C, loss, head):
    model = make(ptype, C, loss, threshold=0.25)
    data = dumps_linear_learner(model)
    back = loads_linear_learner(data)
    np.testing.assert_array_equal(back.weight, model.weight)
    np.testing.assert_array_equal(back.bias, model.bias)
    assert (back.predictor_type, back.loss_type, back.threshold) == (ptype, model.loss_type, 0.25)
    assert head_op_of(zipfile.ZipFile(io.BytesIO(data)).read("mx-mod-symbol.json").decode()) == head


def test_scores_and_labels():
    X = RNG.normal(size=(40, 5)).astype(np.float32)
    binary = make("binary_classifier", threshold=0.3)
    z = X @ binary.weight[:, 0] + binary.bias[0, 0]
    out = binary.outputs(X)
    np.testing.assert_allclose(out["score"], 1 / (1 + np.exp(-z)), rtol=1e-6)
    np.testing.assert_array_equal(out["predicted_label"], (out["score"] > 0.3).astype(np.float32))
    assert list(out) == ["score", "predicted_label"] and out["predicted_label"].dtype == np.float32

    hinge = LinearLearnerModel(binary.weight, binary.bias, "binary_classifier", 0.0, "hinge_loss")
    np.testing.assert_allclose(hinge.scores(X), z, rtol=1e-5, atol=1e-6)

    reg = make("regressor")
    out = reg.outputs(X)
    assert list(out) == ["score"]
    np.testing.assert_allclose(out["score"], X @ reg.weight[:, 0] + reg.bias[0, 0], rtol=1e-5, atol=1e-6)

    mc = make("multiclass_classifier", 4)
    out = mc.outputs(X)
    logits = X @ mc.weight + mc.bias
    want = np.exp(logits - logits.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    assert out["score"].shape == (40, 4)
    np.testing.assert_allclose(out["score"], want, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(out["predicted_label"], logits.argmax(1).astype(np.float32))


def test_sigmoid_saturates_without_warnings():
    model = LinearLearnerModel(np.ones((1, 1)), np.zeros((1, 1)), "binary_classifier")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = model.scores(np.array([[-1e4], [1e4]], np.float32))
    assert s.tolist() == [0.0, 1.0]


def test_sparse_equals_dense():
    model = make("multiclass_classifier", 3, d=20)
    X = RNG.normal(size=(10, 20)).astype(np.float32) * (RNG.random((10, 20)) < 0.3)
    np.testing.assert_allclose(model.scores(sp.csr_matrix(X)), model.scores(X), rtol=1e-5)


def test_invalid_models_are_refused():
    with pytest.raises(ValueError, match="predictor_type"):
        LinearLearnerModel(np.ones((2, 1)), np.ones((1, 1)), "ranker")
    with pytest.raises(ValueError, match="one output column"):
        LinearLearnerModel(np.ones((2, 3)), np.ones((1, 3)), "binary_classifier")
    with pytest.raises(ValueError, match="does not match"):
        LinearLearnerModel(np.ones((2, 3)), np.ones((1, 2)), "multiclass_classifier")
    with pytest.raises(ValueError, match="expected 2 features, got 3"):
        LinearLearnerModel(np.ones((2, 1)), np.ones((1, 1)), "regressor").scores(np.ones((1, 3)))


def test_loads_refuses_non_models():
    with pytest.raises(LinearLearnerFormatError, match="not a ZIP"):
        loads_linear_learner(b"garbage")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("other.txt", "x")
    with pytest.raises(LinearLearnerFormatError, match="no mx-mod-0000.params"):
        loads_linear_learner(buf.getvalue())


def test_symbol_writer_reproduces_the_aws_files_byte_for_byte(fixtures_dir):
    covid = (fixtures_dir / "ll-regressor-covid" / "mx-mod-symbol.json").read_text()
    assert linear_symbol_json(513, 1, "LinearRegressionOutput", counter=32) == covid
    mcv = zipfile.ZipFile(fixtures_dir / "ll-binary-mcv" / "model_algo-1").read("mx-mod-symbol.json").decode()
    assert linear_symbol_json(5, 1, "LogisticRegressionOutput", counter=32).replace("10301", "10000") == mcv


def adult_model(fixtures_dir):
    with tarfile.open(fixtures_dir / "ll-binary-adult-aws" / "ll-adult-prediction-model.tar.gz") as tar:
        return loads_linear_learner(tar.extractfile("model_algo-1").read())


def test_aws_fixtures_decode(fixtures_dir):
    covid = loads_linear_learner((fixtures_dir / "ll-regressor-covid" / "model_algo-1").read_bytes())
    assert covid.predictor_type == "regressor" and covid.weight.shape == (513, 1)
    assert float(covid.bias[0, 0]) == -1055.3748779296875
    mcv = loads_linear_learner((fixtures_dir / "ll-binary-mcv" / "model_algo-1").read_bytes())
    assert mcv.threshold == 0.3609479069709778 and mcv.weight.shape == (5, 1)
    with tarfile.open(fixtures_dir / "ll-binary-mcv" / "model.tar.gz") as tar:
        other = loads_linear_learner(tar.extractfile("model_algo-1").read())
    assert other.threshold == 0.4020986557006836  # a different training run than the loose file
    adult = adult_model(fixtures_dir)
    assert adult.predictor_type == "binary_classifier" and adult.threshold == 0.46301859617233276


def test_adult_batch_transform_replay(fixtures_dir):
    model = adult_model(fixtures_dir)
    rows = [json.loads(line) for line in
            (fixtures_dir / "ll-binary-adult-aws" / "replay_batch_transform.jsonl").read_text().splitlines()]
    out = model.outputs(np.array([r["features"] for r in rows], np.float32))
    np.testing.assert_allclose(out["score"], [r["score"] for r in rows], rtol=0, atol=1e-6)
    assert out["predicted_label"].tolist() == [float(r["predicted_label"]) for r in rows]
    assert len(rows) == 334
