"""The container's train entry point on AWS Batch and Kubernetes, without those engines: N local processes
with each engine's variables set as the engine sets them (loopback only), the job spec in SMLOCAL_JOB_SPEC
and nobody laying out /opt/ml. The models equal the SageMaker-path run of the same job (the runtime's
process backend): k-means MSD within 1e-6 relative, linear-learner weights within 1e-5.

Runs: k-means and linear learner on 2 and 3 nodes driven by AWS Batch variables, on 2 nodes by
Kubernetes ones; a 2-node Batch k-means job reading s3:// and writing model.tar.gz to s3:// (moto on
loopback). On loopback no pod name resolves, so the Kubernetes pods (and the Batch main node, which Batch
gives no address) are told DMLC_PS_ROOT_URI=127.0.0.1; the pod-name rule is unit-tested.
"""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from smlocal.artifacts.loader import load_model_dir
from smlocal.runtime.ports import free_port_pair
from tests.datasets import blobs, csv_bytes, linear_problem
from tests.helpers import CONTAINER, job_channel, needs_mxnet, run_container, run_job, training_job

pytest_plugins = ["tests.functional.conftest_s3"]

FILES = 6
CENTERS = np.random.default_rng(3).normal(scale=6.0, size=(4, 5))
HPS = {"kmeans": {"k": "4", "feature_dim": "5", "mini_batch_size": "100"},
       "linear-learner": {"predictor_type": "binary_classifier", "feature_dim": "5", "mini_batch_size": "100",
                          "epochs": "3", "num_models": "2"}}
IMAGES = {a: f"382416733822.dkr.ecr.us-east-1.amazonaws.com/{a}:1" for a in HPS}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine-data")
    for algorithm in HPS:
        folder = root / algorithm
        folder.mkdir()
        for i in range(FILES):
            if algorithm == "kmeans":
                content = csv_bytes(blobs(CENTERS, 150 + 20 * i, seed=i, std=1.0))
            else:
                content = csv_bytes(*linear_problem("binary", 200 + 20 * i, seed=10 + i))
            (folder / f"part-{i}.csv").write_bytes(content)
    return root


def _body(algorithm: str, source, output, nodes: int, name: str) -> dict:
    csv = f"text/csv;label_size={0 if algorithm == 'kmeans' else 1}"
    body = training_job(name, [job_channel("train", source, "ShardedByS3Key", ContentType=csv)], Path("."),
                        image=IMAGES[algorithm], hps=HPS[algorithm], count=nodes)
    body["OutputDataConfig"]["S3OutputPath"] = str(output)
    return body


def _engine_env(engine: str, nodes: int, index: int) -> dict:
    """The variables the engine sets on node ``index`` (and the manifest's env on Kubernetes)."""
    if engine == "batch":
        env = {"AWS_BATCH_JOB_NUM_NODES": str(nodes), "AWS_BATCH_JOB_NODE_INDEX": str(index),
               "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0", "AWS_BATCH_JOB_ID": f"a1b2c3#{index}"}
        if index:
            env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] = "127.0.0.1"
        else:
            env["DMLC_PS_ROOT_URI"] = "127.0.0.1"
        return env
    return {"JOB_COMPLETION_INDEX": str(index), "SMLOCAL_K8S_COMPLETIONS": str(nodes), "SMLOCAL_K8S_JOB": "train",
            "SMLOCAL_K8S_SERVICE": "train", "DMLC_PS_ROOT_URI": "127.0.0.1"}


def run_nodes(tmp_path: Path, engine: str, body: dict, extra: dict | None = None) -> list[Path]:
    """Every node as its own container/train process on an empty base dir; each must exit 0."""
    nodes = body["ResourceConfig"]["InstanceCount"]
    port = free_port_pair()
    procs = []
    for i in range(nodes):
        base = tmp_path / f"{engine}-node-{i}"
        env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SMLOCAL_JOB_SPEC": json.dumps(body),
               "DMLC_PS_ROOT_PORT": str(port), "SMLOCAL_KV_MONITOR_PORT": str(port + 1), "SMLOCAL_KV_TIMEOUT": "30",
               **_engine_env(engine, nodes, i), **((extra or {}).get(i, {}))}
        procs.append((base, subprocess.Popen([sys.executable, str(CONTAINER / "train")], env=env, text=True,
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
    for i, (base, proc) in enumerate(procs):
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"node {i}:\n{out[-4000:]}"
        assert f"as worker {i + 1} of {nodes}" in out
    return [base for base, _ in procs]


def _model(tar_path: Path, into: Path):
    with tarfile.open(tar_path) as tar:
        assert tar.getnames() == ["model_algo-1"]  # the first node's model only
        tar.extractall(into)
    return load_model_dir(into)


def _msd(centers, X) -> float:
    d = ((X[:, None, :].astype(np.float64) - np.asarray(centers, np.float64)[None]) ** 2).sum(axis=2)
    return float(d.min(axis=1).mean())


def _assert_same_model(algorithm: str, model, baseline, data: Path) -> None:
    if algorithm == "kmeans":
        X = np.vstack([np.loadtxt(p, delimiter=",", ndmin=2) for p in sorted((data / "kmeans").glob("*.csv"))])
        assert _msd(model.centers, X) == pytest.approx(_msd(baseline.centers, X), rel=1e-6)
    else:
        np.testing.assert_allclose(model.weight, baseline.weight, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(model.bias, baseline.bias, rtol=1e-5, atol=1e-5)


_baselines: dict = {}


def sagemaker_model(data: Path, algorithm: str, nodes: int, tmp_path: Path):
    """The same job through the runtime (resourceconfig.json, process backend), once per module."""
    if (algorithm, nodes) not in _baselines:
        out = tmp_path / "sagemaker"
        result = run_job(_body(algorithm, data / algorithm, out, nodes, f"sm-{nodes}"))
        assert result.status == "Completed", result.failure_reason
        _baselines[algorithm, nodes] = _model(result.model_artifacts, tmp_path / "sagemaker-model")
    return _baselines[algorithm, nodes]


RUNS = list(itertools.product(("batch", "kubernetes"), ("kmeans", "linear-learner"), (2, 3)))


@needs_mxnet
@pytest.mark.parametrize("engine, algorithm, nodes", RUNS)
def test_an_engine_run_gives_the_sagemaker_model(tmp_path, data, engine, algorithm, nodes):
    out = tmp_path / "out"
    bases = run_nodes(tmp_path, engine, _body(algorithm, data / algorithm, out, nodes, "engine-job"))
    for i, base in enumerate(bases):  # each node laid out its own shard, and no resourceconfig.json
        assert sorted(p.name for p in (base / "input" / "data" / "train").iterdir()) == \
            [f"part-{k}.csv" for k in range(i, FILES, nodes)]
        assert not (base / "input" / "config" / "resourceconfig.json").exists()
    model = _model(out / "engine-job" / "output" / "model.tar.gz", tmp_path / "model")
    _assert_same_model(algorithm, model, sagemaker_model(data, algorithm, nodes, tmp_path), data)


@needs_mxnet
def test_s3_channels_and_output_on_batch(tmp_path, data, s3_env, bucket):
    s3 = s3_env.client()
    for path in sorted((data / "kmeans").glob("*.csv")):
        s3.put_object(Bucket=bucket, Key=f"train/{path.name}", Body=path.read_bytes())
    body = _body("kmeans", f"s3://{bucket}/train/", f"s3://{bucket}/out", 2, "s3-job")
    caches = {i: {"SMLOCAL_S3_CACHE": str(tmp_path / f"cache-{i}")} for i in range(2)}
    run_nodes(tmp_path, "batch", body, extra=caches)
    for i in range(2):  # ShardedByS3Key: a node downloads its own shard only
        assert len(list((tmp_path / f"cache-{i}" / "objects").glob("*.json"))) == FILES // 2
    tar = tmp_path / "model.tar.gz"
    s3.download_file(bucket, "out/s3-job/output/model.tar.gz", str(tar))
    _assert_same_model("kmeans", _model(tar, tmp_path / "model"), sagemaker_model(data, "kmeans", 2, tmp_path), data)


@needs_mxnet
@pytest.mark.parametrize("engine, hint", [("batch", "security group allows inbound TCP"),
                                          ("kubernetes", "headless Service 'train'")])
def test_a_node_that_cannot_reach_the_main_node_gets_the_engine_hint(tmp_path, data, engine, hint):
    body = _body("kmeans", data / "kmeans", tmp_path / "out", 2, "lonely")
    env = {**_engine_env(engine, 2, 1), "SMLOCAL_JOB_SPEC": json.dumps(body), "SMLOCAL_KV_TIMEOUT": "2",
           "DMLC_PS_ROOT_PORT": str(free_port_pair())}
    if engine == "kubernetes":
        env.pop("DMLC_PS_ROOT_URI")  # the pod name train-0.train resolves nowhere here
    result = run_container("train", tmp_path / "node", env=env, timeout=60)
    assert result.returncode in (1, 3), result.stdout[-3000:]
    assert hint in result.failure, result.failure


def test_a_contradictory_environment_is_a_customer_error(tmp_path, data):
    body = _body("kmeans", data / "kmeans", tmp_path / "out", 2, "bad-env")
    env = {**_engine_env("batch", 2, 1), "AWS_BATCH_JOB_NODE_INDEX": "2", "SMLOCAL_JOB_SPEC": json.dumps(body)}
    result = run_container("train", tmp_path / "node", env=env, timeout=60)
    assert result.returncode == 2 and result.failure.startswith("Customer Error: "), result.stdout[-3000:]
    assert "AWS_BATCH_JOB_NODE_INDEX=2" in result.failure
