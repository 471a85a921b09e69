"""Our artifact codecs against real MXNet 1.9.1, in both directions, and against the AWS files."""
from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from smlocal.artifacts.kmeans import KMeansModel, dumps_kmeans
from smlocal.artifacts.linear_learner import LinearLearnerModel, dumps_linear_learner, loads_linear_learner
from smlocal.artifacts.loader import load_model_dir
from smlocal.artifacts.mxnet_ndarray import dumps_ndarrays, load_ndarrays

mx = pytest.importorskip("mxnet")
RNG = np.random.default_rng(5)


def mx_save_bytes(tmp_path, arrays) -> bytes:
    path = str(tmp_path / "mx.nd")
    if isinstance(arrays, dict):
        mx.nd.save(path, {k: mx.nd.array(v, dtype=v.dtype) for k, v in arrays.items()})
    else:
        mx.nd.save(path, [mx.nd.array(v, dtype=v.dtype) for v in arrays])
    return Path(path).read_bytes()


@pytest.mark.parametrize("arrays", [
    [RNG.normal(size=(10, 2)).astype(np.float32)],
    [RNG.normal(size=(3, 4, 2)).astype(np.float32), RNG.normal(size=(7,)).astype(np.float64)],
    {"arg:fc0_weight": RNG.normal(size=(14, 1)).astype(np.float32),
     "arg:fc0_bias": RNG.normal(size=(1, 1)).astype(np.float32)},
    {"1": np.ones((70, 1), np.float32), "0": RNG.normal(size=(70, 5)).astype(np.float32)},
    [np.arange(12, dtype=np.int32).reshape(3, 4), np.arange(4, dtype=np.int64), np.arange(3, dtype=np.uint8)],
], ids=["kmeans-list", "mixed-list", "ll-params-dict", "state-dict", "int-dtypes"])
def test_byte_identical_to_mx_nd_save_and_mx_reads_ours(tmp_path, arrays):
    theirs = mx_save_bytes(tmp_path, arrays)
    ours = dumps_ndarrays(arrays)
    assert ours == theirs
    # mx.nd.save -> our load
    back = load_ndarrays(theirs)
    # our bytes -> mx.nd.load
    path = tmp_path / "ours.nd"
    path.write_bytes(ours)
    loaded = mx.nd.load(str(path))
    if isinstance(arrays, dict):
        assert list(back) == list(arrays) and set(loaded) == set(arrays)
        pairs = [(arrays[k], back[k], loaded[k].asnumpy()) for k in arrays]
    else:
        assert isinstance(back, list) and isinstance(loaded, list)
        pairs = list(zip(arrays, back, [a.asnumpy() for a in loaded]))
    for want, ours_back, mx_back in pairs:
        assert ours_back.dtype == want.dtype == mx_back.dtype
        np.testing.assert_array_equal(ours_back, want)
        np.testing.assert_array_equal(mx_back, want)


def test_kmeans_model_file_loads_in_mxnet(tmp_path):
    model = KMeansModel(RNG.normal(size=(8, 7)))
    path = tmp_path / "model_algo-1"
    path.write_bytes(dumps_kmeans(model))
    loaded = mx.nd.load(str(path))
    assert isinstance(loaded, list) and len(loaded) == 1 and loaded[0].shape == (8, 7)
    np.testing.assert_array_equal(loaded[0].asnumpy(), model.centers)


def mxnet_forward(module_dir: Path, X: np.ndarray) -> np.ndarray:
    """What a user gets: Module.load('mx-mod', 0), bind for inference, forward on raw features."""
    mod = mx.mod.Module.load(str(module_dir / "mx-mod"), 0)
    mod.bind(data_shapes=[("data", X.shape)], for_training=False)
    mod.forward(mx.io.DataBatch([mx.nd.array(X)]), is_train=False)
    return mod.get_outputs()[0].asnumpy()


def unzip(data: bytes, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    zipfile.ZipFile(io.BytesIO(data)).extractall(target)
    return target


@pytest.mark.parametrize("ptype, C, loss", [
    ("regressor", 1, None), ("binary_classifier", 1, None), ("binary_classifier", 1, "hinge_loss"),
    ("multiclass_classifier", 4, None),
])
def test_our_linear_learner_zip_runs_in_mxnet_module(tmp_path, ptype, C, loss):
    model = LinearLearnerModel(RNG.normal(size=(9, C)).astype(np.float32), RNG.normal(size=(1, C)), ptype, 0.4, loss)
    X = (RNG.normal(size=(16, 9)) * 3).astype(np.float32)
    out = mxnet_forward(unzip(dumps_linear_learner(model), tmp_path / "m"), X)
    ours = model.scores(X)
    np.testing.assert_allclose(out.reshape(ours.shape), ours, rtol=1e-5, atol=1e-7)
    # and the symbol declares the shapes our params have
    sym = mx.sym.load(str(tmp_path / "m" / "mx-mod-symbol.json"))
    arg_shapes, _, _ = sym.infer_shape(data=X.shape)
    shapes = dict(zip(sym.list_arguments(), arg_shapes))
    assert shapes["fc0_weight"] == (9, C) and shapes["fc0_bias"] == (1, C)


def aws_ll_archives(fixtures_dir):
    yield "ll-regressor-covid", (fixtures_dir / "ll-regressor-covid" / "model_algo-1").read_bytes()
    yield "ll-binary-mcv/loose", (fixtures_dir / "ll-binary-mcv" / "model_algo-1").read_bytes()
    for name, tgz in (("ll-binary-mcv/tar", "ll-binary-mcv/model.tar.gz"),
                      ("ll-binary-adult-aws", "ll-binary-adult-aws/ll-adult-prediction-model.tar.gz")):
        with tarfile.open(fixtures_dir / tgz) as tar:
            yield name, tar.extractfile("model_algo-1").read()


def test_aws_linear_learner_files_forward_like_mxnet(fixtures_dir, tmp_path):
    for i, (name, data) in enumerate(aws_ll_archives(fixtures_dir)):
        model = loads_linear_learner(data)
        if name == "ll-binary-adult-aws":
            rows = (fixtures_dir / name / "replay_batch_transform.jsonl").read_text().splitlines()
            X = np.array([json.loads(r)["features"] for r in rows], np.float32)
        else:
            X = (RNG.normal(size=(32, model.feature_dim)) * 2).astype(np.float32)
        out = mxnet_forward(unzip(data, tmp_path / str(i)), X)[:, 0]
        np.testing.assert_allclose(model.scores(X), out, rtol=1e-5, atol=1e-6, err_msg=name)


def test_aws_ndarray_files_decode_like_mxnet(fixtures_dir):
    files = [p for p in fixtures_dir.glob("*/*") if p.name.startswith(("model_algo-1", "state_", "mx-mod-0000"))]
    files = [p for p in files if not p.read_bytes().startswith(b"PK")]
    assert len(files) >= 8
    for path in files:
        ours, theirs = load_ndarrays(path), mx.nd.load(str(path))
        assert type(ours) is type(theirs), path
        if isinstance(ours, dict):
            assert list(ours) == list(theirs)
            pairs = [(ours[k], theirs[k]) for k in ours]
        else:
            pairs = list(zip(ours, theirs))
        for a, b in pairs:
            np.testing.assert_array_equal(a, b.asnumpy(), err_msg=str(path))
    # every fixture folder with a servable model loads through the loader
    for folder in sorted(p for p in fixtures_dir.iterdir() if p.is_dir() and any(p.glob("model*"))):
        assert load_model_dir(folder).feature_dim > 0, folder
