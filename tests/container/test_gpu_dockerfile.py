"""Dockerfile.gpu builds and its image is complete, checked against a stand-in for the CUDA base.

A stand-in (../shared/ci/docker-up.sh) has no CUDA libraries and there is no GPU here, so what is checked is
what does not need one: the image builds, the package and CuPy for the base's CUDA major version are
installed, the entry points are on PATH, and training falls back to the CPU (numpy) path and says so. The GPU
path itself is exercised outside Docker on a GPU machine, with the same arrays code.
"""
from __future__ import annotations

import io
import re

import numpy as np
import pytest

from tests.container.conftest import build_image, python_probe, run_image
from tests.helpers import REPO, write_config

pytestmark = pytest.mark.container
GPU_TAG = "smlocal-gpu:test"
MB = 1_000_000


def dockerfile_arg(name: str) -> str:
    return re.search(rf"^ARG {name}=(\S+)", (REPO / "Dockerfile.gpu").read_text(), re.M).group(1)


@pytest.fixture(scope="module")
def gpu_image(docker_client):
    base = dockerfile_arg("CUDA_IMAGE")
    try:
        docker_client.images.get(base)
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound; pulling it here would be gigabytes
        pytest.skip(f"the CUDA base {base} is not present; import a stand-in with "
                    f"../shared/ci/docker-up.sh python:3.11-slim {base} (or docker pull it)")
    return build_image(docker_client, GPU_TAG, dockerfile="Dockerfile.gpu")


def test_gpu_image_contents(docker_client, gpu_image):
    image = docker_client.images.get(gpu_image)
    config = image.attrs["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert config["Labels"]["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
    assert env["SMLOCAL_ALGORITHM"] == "kmeans" and env["PYTHONUNBUFFERED"] == "1"
    assert not config.get("Entrypoint") or config["Entrypoint"][-1] == "--"
    print(f"\nIMAGE SIZE {gpu_image}: {image.attrs['Size'] / MB:.0f} MB on the stand-in base")

    probe = ("import importlib.metadata as md, importlib.util as u, shutil, sys, smlocal, smlocal.arrays, cupy; "
             "print(sys.version_info[:2]); "
             "print(shutil.which('train'), shutil.which('serve')); "
             "print([d.metadata['Name'] for d in md.distributions() if d.metadata['Name'].startswith('cupy')]); "
             "print(u.find_spec('mxnet') is None)")
    *_, version, entry_points, cupy_dists, no_mxnet = python_probe(docker_client, gpu_image, probe)
    assert version == "(3, 11)"
    assert entry_points == "/opt/smlocal/container/train /opt/smlocal/container/serve"
    cuda_major = re.search(r"cuda:(\d+)\.", dockerfile_arg("CUDA_IMAGE")).group(1)
    assert cupy_dists == f"['cupy-cuda{cuda_major}x']", (cupy_dists, cuda_major)
    assert no_mxnet == "True"


def test_gpu_image_trains_on_cpu_without_a_gpu(docker_client, gpu_image, opt_ml):
    """No device: the arrays falls back to numpy, logs it, and the model is written."""
    from sagemaker.amazon.common import write_numpy_to_dense_tensor

    rng = np.random.default_rng(0)
    X = (np.repeat(np.eye(3, dtype=np.float32) * 8, 50, axis=0) + rng.normal(0, 0.3, (150, 3))).astype(np.float32)
    buf = io.BytesIO()
    write_numpy_to_dense_tensor(buf, X)
    write_config(opt_ml, {"k": 3, "feature_dim": 3, "mini_batch_size": 50},
                 {"train": {"ContentType": "application/x-recordio-protobuf", "TrainingInputMode": "File"}})
    (opt_ml / "input" / "data" / "train").mkdir()
    (opt_ml / "input" / "data" / "train" / "data.pbr").write_bytes(buf.getvalue())
    result = run_image(docker_client, gpu_image, "train", base=opt_ml, network="none")
    assert result.exit_code == 0, result.logs[-4000:]
    assert "Number of GPUs being used: 0" in result.logs, result.logs[-3000:]
    assert result.model_file().stat().st_size > 0
