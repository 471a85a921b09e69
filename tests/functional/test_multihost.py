"""Multi-host training through the runtime's process backend and the real MXNet 1.9.1 KVStore dist_sync.

Every job runs its hosts ``algo-1..algo-N`` as local processes on a ShardedByS3Key train channel (and a
FullyReplicated test channel); the first host starts the KVStore scheduler and server. Checked: 2 and 3
hosts give the model quality of one host on the same data, only ``model_algo-1`` is written, every host
exits 0; a host killed mid-job or never joining fails the job quickly with a reason naming the host.
"""
from __future__ import annotations

import os
import re
import signal
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from smlocal.artifacts.loader import load_model_dir
from smlocal.runtime.ports import free_port_pair
from smlocal.runtime.process import ProcessBackend
from tests.helpers import job_channel, process_alive, run_container, run_job, training_job, write_config

pytest.importorskip("mxnet")

FILES = 6
KM_CENTERS = np.random.default_rng(42).normal(scale=6.0, size=(8, 6))
KM_HPS = {"k": "8", "feature_dim": "6", "mini_batch_size": "200", "epochs": "2"}
LL_W = np.array([1.5, -2.0, 1.0, 0.5, -1.0, 0.8, -0.3, 1.2])
LL_HPS = {"predictor_type": "binary_classifier", "feature_dim": "8", "mini_batch_size": "100", "epochs": "8",
          "num_models": "4", "binary_classifier_model_selection_criteria": "accuracy"}


def _kmeans_rows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (KM_CENTERS[rng.integers(0, len(KM_CENTERS), n)] + rng.normal(scale=1.5, size=(n, 6))).astype(np.float32)


def _ll_rows(n: int, seed: int) -> np.ndarray:
    """[label, features]: offset and scaled features, a noisy linear rule (accuracy below 100 %)."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 8))
    y = (Z @ LL_W + 0.8 * rng.normal(size=n) > 0.3).astype(np.float32)
    X = Z * np.linspace(0.5, 20.0, 8) + np.linspace(-50.0, 100.0, 8)
    return np.column_stack([y, X]).astype(np.float32)


def _write(directory: Path, parts: list[np.ndarray]) -> Path:
    directory.mkdir(parents=True)
    for i, rows in enumerate(parts):
        np.savetxt(directory / f"part-{i}.csv", rows, delimiter=",", fmt="%.5f")
    return directory


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("multihost-data")
    sizes = [300 + 40 * i for i in range(FILES)]  # shards of different sizes: hosts run out at different steps
    km_train = [_kmeans_rows(n, i) for i, n in enumerate(sizes)]
    ll_train = [_ll_rows(n * 4, 100 + i) for i, n in enumerate(sizes)]
    km_test = [_kmeans_rows(n, 90 + i) for i, n in enumerate((400, 600, 500))]  # 3 files: shardable over 3 hosts
    ll_test = [_ll_rows(n, 190 + i) for i, n in enumerate((900, 1100, 1000))]
    return {
        "kmeans": (_write(root / "km-train", km_train), _write(root / "km-test", km_test)),
        "linear-learner": (_write(root / "ll-train", ll_train), _write(root / "ll-test", ll_test)),
        "km-test-rows": np.vstack(km_test), "ll-test-rows": np.vstack(ll_test),
    }


def _job(out: Path, algorithm: str, data: dict, hosts: int, name: str, hps: dict | None = None,
         environment: dict | None = None, test_distribution: str = "FullyReplicated") -> dict:
    """The module's train (sharded over the hosts) and test channels for ``algorithm`` on ``hosts`` hosts."""
    train, test = data[algorithm]
    csv = f"text/csv;label_size={0 if algorithm == 'kmeans' else 1}"
    return training_job(name, [job_channel("train", train, "ShardedByS3Key", ContentType=csv),
                               job_channel("test", test, test_distribution, ContentType=csv)], out,
                        image=f"382416733822.dkr.ecr.us-east-1.amazonaws.com/{algorithm}:1",
                        hps={**(KM_HPS if algorithm == "kmeans" else LL_HPS), **(hps or {})}, count=hosts,
                        Environment=environment or {})


class RecordingBackend(ProcessBackend):
    """The real process backend, keeping the host processes it starts so a test can kill one."""

    def __init__(self):
        super().__init__()
        self.runs: dict = {}

    def start_training(self, host, on_line, **options):
        run = super().start_training(host, on_line, **options)
        self.runs[host.host] = run
        return run


def _model(result, tmp_path: Path):
    out = tmp_path / f"model-{result.record['TrainingJobName']}"
    with tarfile.open(result.model_artifacts) as tar:
        assert tar.getnames() == ["model_algo-1"]  # only the first host writes the model
        tar.extractall(out)
    return load_model_dir(out)


def _quality(log: Path, split: str, name: str) -> float:
    found = re.findall(rf"#quality_metric: host=algo-\d+, {split} {name} <\w+>=([0-9.e+-]+)", log.read_text())
    assert found, f"no {split} {name} in {log}"
    return float(found[-1])


def _msd(centers: np.ndarray, X: np.ndarray) -> float:
    d = ((X[:, None, :].astype(np.float64) - centers[None].astype(np.float64)) ** 2).sum(axis=2)
    return float(d.min(axis=1).mean())


def _accuracy(model, rows: np.ndarray) -> float:
    scores = np.asarray(model.scores(rows[:, 1:])).reshape(len(rows), -1)[:, 0]
    return float(np.mean((scores > model.threshold) == (rows[:, 0] > 0.5)))


def _check_distributed_logs(result, hosts: int) -> None:
    assert result.status == "Completed", result.failure_reason
    assert result.record["HostExitCodes"] == {f"algo-{i + 1}": 0 for i in range(hosts)}
    envs = [dict(h.env) for h in result.plan.hosts]  # one loopback scheduler port and monitor port per job
    assert {(e["DMLC_PS_ROOT_URI"], e["DMLC_PS_ROOT_PORT"], e["SMLOCAL_KV_MONITOR_PORT"]) for e in envs} == {
        ("127.0.0.1", envs[0]["DMLC_PS_ROOT_PORT"], str(int(envs[0]["DMLC_PS_ROOT_PORT"]) + 1))}
    logs = result.plan.logs_dir
    first = (logs / "algo-1.log").read_text()
    assert re.search(r"Process \d+ is a shell:scheduler\.", first) and re.search(r"Process \d+ is a shell:server\.", first)
    for i in range(hosts):
        text = (logs / f"algo-{i + 1}.log").read_text()
        assert "Create Store: dist_sync" in text
        assert f"Host algo-{i + 1} joined the KVStore as worker {i + 1} of {hosts}" in text
        assert "shell:scheduler" not in text or i == 0


@pytest.fixture(scope="module")
def single(data, tmp_path_factory):
    """The one-host baselines, trained once for the module."""
    out = tmp_path_factory.mktemp("single")
    results = {}
    for algorithm in ("kmeans", "linear-learner"):
        result = run_job(_job(out, algorithm, data, 1, f"single-{algorithm}"))
        assert result.status == "Completed", result.failure_reason
        assert "Create Store: local" in (result.plan.logs_dir / "algo-1.log").read_text()
        results[algorithm] = (result, _model(result, out))
    return results


# 3 hosts also shard the test channel: the hosts' test sums are combined into the whole test set's metrics
SPLITS = [(2, "FullyReplicated"), (3, "ShardedByS3Key")]


@pytest.mark.parametrize("hosts, test_distribution", SPLITS)
def test_kmeans_on_several_hosts_matches_one_host(tmp_path, data, single, hosts, test_distribution):
    result = run_job(_job(tmp_path, "kmeans", data, hosts, f"km-{hosts}", test_distribution=test_distribution))
    _check_distributed_logs(result, hosts)
    centers = _model(result, tmp_path).centers
    X = data["km-test-rows"]
    msd, baseline = _msd(centers, X), _msd(single["kmeans"][1].centers, X)
    print(f"k-means test msd: {hosts} hosts {msd:.5f}, one host {baseline:.5f}")
    assert abs(msd - baseline) <= 0.01 * baseline, (msd, baseline)
    logs = result.plan.logs_dir
    for i in range(hosts):  # every host reports the test msd of the shared final centers
        assert _quality(logs / f"algo-{i + 1}.log", "test", "msd") == pytest.approx(msd, rel=1e-4)
        # train msd: the merged states of all shards, the same number on every host
        assert _quality(logs / f"algo-{i + 1}.log", "train", "msd") == _quality(logs / "algo-1.log", "train", "msd")
    assert "collected the streaming states of" in (logs / "algo-1.log").read_text()


@pytest.mark.parametrize("hosts, test_distribution", SPLITS)
def test_linear_learner_on_several_hosts_matches_one_host(tmp_path, data, single, hosts, test_distribution):
    result = run_job(_job(tmp_path, "linear-learner", data, hosts, f"ll-{hosts}", test_distribution=test_distribution))
    _check_distributed_logs(result, hosts)
    model = _model(result, tmp_path)
    rows = data["ll-test-rows"]
    accuracy, baseline = _accuracy(model, rows), _accuracy(single["linear-learner"][1], rows)
    print(f"linear learner test accuracy: {hosts} hosts {accuracy:.4f}, one host {baseline:.4f}")
    assert accuracy > 0.8
    assert abs(accuracy - baseline) <= 0.005, (accuracy, baseline)
    logs = result.plan.logs_dir
    logged = [_quality(logs / f"algo-{i + 1}.log", "test", "binary_classification_accuracy") for i in range(hosts)]
    assert logged == [pytest.approx(accuracy, abs=1e-9)] * hosts  # the same model and threshold on every host
    selected = {re.search(r"Selected model .*", (logs / f"algo-{i + 1}.log").read_text()).group(0)
                for i in range(hosts)}
    assert len(selected) == 1  # selection decided identically everywhere


@pytest.mark.parametrize("victim", ["algo-2", "algo-1"])
def test_a_host_killed_mid_job_fails_the_job_quickly(tmp_path, data, victim):
    body = _job(tmp_path, "linear-learner", data, 2, f"kill-{victim}",
                hps={"epochs": "500", "early_stopping_patience": "1000"}, environment={"SMLOCAL_KV_TIMEOUT": "20"})
    backend = RecordingBackend()
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(result=run_job(body, backend)), daemon=True)
    thread.start()
    log = tmp_path / f"kill-{victim}" / "logs" / f"{victim}.log"
    deadline = time.monotonic() + 90
    while not (log.is_file() and "#progress_metric" in log.read_text()):  # joined, and training
        assert time.monotonic() < deadline and thread.is_alive(), "the job did not start training"
        time.sleep(0.2)
    first_log = (tmp_path / f"kill-{victim}" / "logs" / "algo-1.log").read_text()
    roles = [int(p) for p in re.findall(r"Process (\d+) is a shell:(?:scheduler|server)\.", first_log)]
    killed = time.monotonic()
    os.kill(backend.runs[victim].pid, signal.SIGKILL)  # the training process alone: its KVStore roles must follow
    thread.join(60)
    assert not thread.is_alive(), "the job did not end within 60 s of the kill"
    result = outcome["result"]
    assert result.status == "Failed" and time.monotonic() - killed < 60
    assert victim in result.failure_reason
    survivor = "algo-1" if victim == "algo-2" else "algo-2"
    failure = (Path(result.record["WorkDirectory"]) / survivor / "output" / "failure").read_text()
    assert failure.startswith("Algorithm Error: lost contact with host " + victim), failure
    assert result.record["HostExitCodes"][survivor] == 1
    for pid in roles:  # the scheduler and server died with their host
        assert not process_alive(pid), f"KVStore role process {pid} outlived the job"


def test_a_host_that_never_joins_fails_within_the_timeout(tmp_path, data):
    """Only algo-1 of a 2-host job runs: it names algo-2 after SMLOCAL_KV_TIMEOUT, and exits 1."""
    train, _ = data["kmeans"]
    base = tmp_path / "algo-1"
    write_config(base, KM_HPS, {"train": {"ContentType": "text/csv;label_size=0", "TrainingInputMode": "File",
                                          "S3DistributionType": "ShardedByS3Key"}},
                 hosts=("algo-1", "algo-2"), current="algo-1")
    (base / "input" / "data").mkdir(parents=True, exist_ok=True)
    os.symlink(train, base / "input" / "data" / "train")
    port = free_port_pair()  # the liveness monitor listens on port + 1
    started = time.monotonic()
    result = run_container("train", base, env={"DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": str(port),
                                                "SMLOCAL_KV_TIMEOUT": "3"}, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert time.monotonic() - started < 30
    assert result.failure.startswith("Algorithm Error: host algo-2 did not join the cluster within 3 s"), result.failure
    assert result.failure in result.stdout
    assert not result.model_file().exists()


def test_a_host_that_cannot_reach_the_first_host_fails_within_the_timeout(tmp_path):
    base = tmp_path / "algo-2"
    write_config(base, KM_HPS, {"train": {"ContentType": "text/csv;label_size=0"}}, hosts=("algo-1", "algo-2"),
                 current="algo-2")
    result = run_container("train", base, env={"DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": str(free_port_pair()),
                                                "SMLOCAL_KV_TIMEOUT": "2"}, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "could not reach the first host algo-1 at 127.0.0.1:" in result.failure
