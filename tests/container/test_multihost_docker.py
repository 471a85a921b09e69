"""Multi-host training with the runtime's docker backend: one container per host on the host network,
the first host's container running the KVStore scheduler and server (MXNet 1.9.1 in the image), a free
loopback port pair per job. Skipped when no Docker engine answers."""
from __future__ import annotations

import re
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from smlocal.artifacts.loader import load_model_dir
from smlocal.runtime import docker as docker_backend
from tests.helpers import job_channel, run_job, training_job

pytestmark = pytest.mark.container


@pytest.fixture
def train_dir(tmp_path):
    rng = np.random.default_rng(5)
    d = tmp_path / "train"
    d.mkdir()
    w = np.array([1.0, -2.0, 0.5, 1.5])
    for i, n in enumerate((400, 500, 450, 350)):
        Z = rng.normal(size=(n, 4))
        y = (Z @ w + 0.3 * rng.normal(size=n) > 0).astype(np.float32)
        np.savetxt(d / f"part-{i}.csv", np.column_stack([y, Z * 10 + 5]), delimiter=",", fmt="%.4f")
    return d


def _body(tmp_path: Path, train_dir: Path, name: str, epochs: int, environment: dict | None = None) -> dict:
    """Linear learner on two hosts in the image, the train channel sharded over them."""
    train = job_channel("train", str(train_dir), "ShardedByS3Key", ContentType="text/csv;label_size=1")
    return training_job(name, [train], tmp_path / "out", image="smlocal", count=2, instance_type="local",
                        hps={"predictor_type": "binary_classifier", "feature_dim": "4", "mini_batch_size": "100",
                             "epochs": str(epochs), "num_models": "2", "early_stopping_patience": "1000"},
                        Environment={"SMLOCAL_ALGORITHM": "linear-learner", **(environment or {})})


def test_two_host_linear_learner_in_containers(tmp_path, train_dir, smlocal_image):
    result = run_job(_body(tmp_path, train_dir, "dk-ll2", epochs=4), docker_backend.DockerBackend(smlocal_image))
    assert result.status == "Completed", result.failure_reason
    assert result.record["HostExitCodes"] == {"algo-1": 0, "algo-2": 0}
    logs = result.plan.logs_dir
    first, second = (logs / "algo-1.log").read_text(), (logs / "algo-2.log").read_text()
    assert re.search(r"Process \d+ is a shell:scheduler\.", first) and re.search(r"Process \d+ is a shell:server\.", first)
    assert "Create Store: dist_sync" in first and "Create Store: dist_sync" in second
    assert "Host algo-2 joined the KVStore as worker 2 of 2" in second
    with tarfile.open(result.model_artifacts) as tar:
        assert tar.getnames() == ["model_algo-1"]
        tar.extractall(tmp_path / "model")
    model = load_model_dir(tmp_path / "model")
    rows = np.vstack([np.loadtxt(p, delimiter=",") for p in sorted(train_dir.glob("*.csv"))])
    scores = np.asarray(model.scores(rows[:, 1:].astype(np.float32))).reshape(len(rows), -1)[:, 0]
    assert np.mean((scores > model.threshold) == (rows[:, 0] > 0.5)) > 0.9
    selected = [re.search(r"Selected model .*", text).group(0) for text in (first, second)]
    assert selected[0] == selected[1]


def test_a_killed_container_fails_the_job_with_its_name(tmp_path, train_dir, smlocal_image):
    body = _body(tmp_path, train_dir, "dk-kill", epochs=1000, environment={"SMLOCAL_KV_TIMEOUT": "20"})
    outcome: dict = {}
    backend = docker_backend.DockerBackend(smlocal_image)
    thread = threading.Thread(target=lambda: outcome.update(result=run_job(body, backend)), daemon=True)
    thread.start()
    log = tmp_path / "out" / "dk-kill" / "logs" / "algo-2.log"
    deadline = time.monotonic() + 120
    while not (log.is_file() and "#progress_metric" in log.read_text()):
        assert time.monotonic() < deadline and thread.is_alive(), "the job did not start training"
        time.sleep(0.2)
    client = docker_backend.client()
    client.containers.get("smlocal-dk-kill-algo-2").kill()
    killed = time.monotonic()
    thread.join(60)
    assert not thread.is_alive() and time.monotonic() - killed < 60
    result = outcome["result"]
    assert result.status == "Failed" and "algo-2" in result.failure_reason, result.failure_reason
    failure = (Path(result.record["WorkDirectory"]) / "algo-1" / "output" / "failure").read_text()
    assert failure.startswith("Algorithm Error: lost contact with host algo-2"), failure
