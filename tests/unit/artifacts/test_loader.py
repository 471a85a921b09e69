"""load_model_dir: which file it picks, tarballs, unsafe tarballs, and errors that name the file."""
from __future__ import annotations

import io
import shutil
import tarfile

import numpy as np
import pytest

from smlocal.artifacts.kmeans import KMeansModel, dumps_kmeans
from smlocal.artifacts.linear_learner import LinearLearnerModel, dumps_linear_learner
from smlocal.artifacts.loader import load_model_dir
from smlocal.artifacts.mxnet_ndarray import dumps_ndarrays
from smlocal.errors import CustomerError, ModelLoadError

CENTERS = np.arange(6, dtype=np.float32).reshape(3, 2)


def add_member(tar, name, data=b"", kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def write_tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for m in members:
            add_member(tar, *m)


def test_model_algo_1(tmp_path):
    (tmp_path / "model_algo-1").write_bytes(dumps_kmeans(KMeansModel(CENTERS)))
    (tmp_path / "state_0b2c").write_bytes(dumps_ndarrays({"1": np.ones((3, 1), np.float32)}))
    model = load_model_dir(tmp_path)
    assert isinstance(model, KMeansModel)
    np.testing.assert_array_equal(model.centers, CENTERS)


def test_any_model_host_and_model_algo_1_preferred(tmp_path):
    ll = LinearLearnerModel(np.ones((4, 1)), np.zeros((1, 1)), "regressor")
    (tmp_path / "model_algo-2").write_bytes(dumps_linear_learner(ll))
    assert isinstance(load_model_dir(tmp_path), LinearLearnerModel)
    (tmp_path / "model_algo-1").write_bytes(dumps_kmeans(KMeansModel(CENTERS)))
    assert isinstance(load_model_dir(tmp_path), KMeansModel)


def test_model_tar_gz(tmp_path):
    data = dumps_kmeans(KMeansModel(CENTERS))
    write_tar(tmp_path / "model.tar.gz", [("state_x", b"junk"), ("./model_algo-1", data)])
    np.testing.assert_array_equal(load_model_dir(tmp_path).centers, CENTERS)


def test_aws_tarballs(fixtures_dir, tmp_path):
    shutil.copy(fixtures_dir / "ll-binary-adult-aws" / "ll-adult-prediction-model.tar.gz", tmp_path / "model.tar.gz")
    model = load_model_dir(tmp_path)
    assert model.predictor_type == "binary_classifier" and model.feature_dim == 14
    for folder in ("kmeans-ufo-labs", "kmeans-popseg-zomma2", "kmeans-popseg-ahmed-gaal", "kmeans-census-iris9112"):
        target = tmp_path / folder
        target.mkdir()
        shutil.copy(fixtures_dir / folder / "model.tar.gz", target)
        from_tar = load_model_dir(target)
        loose = load_model_dir(fixtures_dir / folder)  # the loose model_algo-1 wins over the tarball
        np.testing.assert_array_equal(from_tar.centers, loose.centers)


@pytest.mark.parametrize("members, message", [
    ([("/etc/model_algo-1", b"x")], "has an absolute path"),
    ([("../model_algo-1", b"x")], "would be written outside"),
    ([("model_algo-1", b"", tarfile.SYMTYPE, "/etc/passwd")], "is a link"),
    ([("model_algo-1", b"", tarfile.LNKTYPE, "other")], "is a link"),
    ([("model_algo-1", b"", tarfile.CHRTYPE)], "is a device or FIFO"),
    ([("model_algo-1", b"", tarfile.FIFOTYPE)], "is a device or FIFO"),
    ([("sub/model_algo-1", b"x")], "holds no model_algo-1"),
])
def test_unsafe_or_empty_tarballs_are_refused(tmp_path, members, message):
    write_tar(tmp_path / "model.tar.gz", members)
    with pytest.raises(ModelLoadError, match=message) as exc:
        load_model_dir(tmp_path)
    assert "model.tar.gz" in str(exc.value)


def test_errors_name_the_file(tmp_path):
    (tmp_path / "model_algo-1").write_bytes(b"this is not a model")
    with pytest.raises(ModelLoadError, match=r"model_algo-1.*neither a k-means model") as exc:
        load_model_dir(tmp_path)
    assert isinstance(exc.value, CustomerError)
    (tmp_path / "model_algo-1").write_bytes(dumps_ndarrays({"s": np.ones(3, np.float32)}))
    with pytest.raises(ModelLoadError, match=r"model_algo-1.*named arrays \['s'\]"):
        load_model_dir(tmp_path)
    (tmp_path / "model_algo-1").write_bytes(dumps_kmeans(KMeansModel(CENTERS))[:-3])
    with pytest.raises(ModelLoadError, match=r"model_algo-1.*truncated"):
        load_model_dir(tmp_path)
    (tmp_path / "model_algo-1").write_bytes(b"PK\x03\x04 broken zip")
    with pytest.raises(ModelLoadError, match=r"model_algo-1.*not a ZIP"):
        load_model_dir(tmp_path)


def test_missing_and_empty_directories(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model_dir(tmp_path / "nope")
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(ModelLoadError, match=r"No model in .*readme.txt"):
        load_model_dir(tmp_path)
    (tmp_path / "model.tar.gz").write_bytes(b"not gzip")
    with pytest.raises(ModelLoadError, match=r"Cannot read .*model.tar.gz"):
        load_model_dir(tmp_path)
