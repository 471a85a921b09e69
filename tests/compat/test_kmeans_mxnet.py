"""A k-means model trained by smlocal, read by real MXNet 1.9.1 and compared with AWS's own artifacts."""
from __future__ import annotations

import numpy as np
import pytest

from smlocal.artifacts.mxnet_ndarray import load_ndarrays
from smlocal.data.protobuf import dense_to_records
from smlocal.data.recordio import encode_records
from tests.helpers import run_container, write_config

mx = pytest.importorskip("mxnet")

HEADER = 8 * 3 + 4 + 4 + 4 + 8 * 2 + 4 * 3  # list header + one V2 NDArray header for a 2-d array


def train_model(base, k: int, d: int, n: int = 2000):
    rng = np.random.default_rng(k * 100 + d)
    X = (rng.normal(size=(n, d)) + rng.integers(0, k, (n, 1)) * 3.0).astype(np.float32)
    folder = base / "input" / "data" / "train"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.rec").write_bytes(encode_records(dense_to_records(X)))
    write_config(base, {"k": k, "feature_dim": d},
                 {"train": {"ContentType": "application/x-recordio-protobuf", "TrainingInputMode": "File"}})
    result = run_container("train", base, algorithm="kmeans", timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.model_file()


def test_mxnet_loads_our_model_as_one_k_by_d_float32_array(base):
    path = train_model(base, k=5, d=6)
    loaded = mx.nd.load(str(path))
    assert isinstance(loaded, list) and len(loaded) == 1
    array = loaded[0]
    assert array.shape == (5, 6) and array.dtype == np.float32
    ours = load_ndarrays(path)
    np.testing.assert_array_equal(array.asnumpy(), ours[0])
    # and MXNet writes the very same bytes for those centers
    resaved = base / "resaved"
    mx.nd.save(str(resaved), [array])
    assert resaved.read_bytes() == path.read_bytes()


def test_our_model_has_the_layout_of_the_aws_artifact(base, fixtures_dir):
    aws = (fixtures_dir / "kmeans-popseg-ahmed-gaal" / "model_algo-1").read_bytes()
    aws_arrays = mx.nd.load(str(fixtures_dir / "kmeans-popseg-ahmed-gaal" / "model_algo-1"))
    k, d = aws_arrays[0].shape  # (7, 8)
    ours = train_model(base, k=k, d=d).read_bytes()
    assert len(ours) == len(aws)
    # same header (magic, count, V2 array magic, dense, shape, cpu(0), float32) and the same empty name list
    assert ours[:HEADER] == aws[:HEADER]
    assert ours[-8:] == aws[-8:] == b"\0" * 8
    # our reader agrees with MXNet on the AWS file
    np.testing.assert_array_equal(load_ndarrays(aws)[0], aws_arrays[0].asnumpy())
