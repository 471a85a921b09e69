"""The runtime's docker backend against the project's image (docker SDK, host network, bind mounts):
train in File and Pipe mode sharded over 2 hosts, a failing job, serve + predict, batch transform.
Skipped when no Docker engine answers (CI starts one with ../shared/ci/docker-up.sh)."""
from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest

from smlocal.runtime import docker as docker_backend
from smlocal.runtime.endpoint import Endpoint
from smlocal.runtime.jobs import run_training
from smlocal.runtime.jobspec import parse_job
from smlocal.runtime.progress import Display
from smlocal.runtime.transform import resolve_params, run_transform

from tests.helpers import job_channel, records_read_in_epoch0, training_job

pytestmark = pytest.mark.container
IMAGE = "smlocal:test"
ROWS = (30, 50, 70)


@pytest.fixture(scope="module")
def image(request):
    client = docker_backend.client()
    if client is None:
        pytest.skip("no Docker engine answers (run ../shared/ci/docker-up.sh and export DOCKER_HOST)")
    try:  # the images' session fixture builds smlocal:test when the suite provides it
        return request.getfixturevalue("smlocal_image")
    except pytest.FixtureLookupError:
        pass
    try:
        client.images.get(IMAGE)
    except Exception:  # noqa: BLE001
        pytest.skip(f"image {IMAGE} is not built (docker build --network host -t {IMAGE} .)")
    return IMAGE


@pytest.fixture
def backend(image):
    return docker_backend.DockerBackend(image if isinstance(image, str) else IMAGE)


@pytest.fixture
def csv_dir(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "csv"
    d.mkdir()
    centers = np.array([[0, 0, 0], [6, 6, 0], [0, 6, 6]], dtype=np.float32)
    for i, n in enumerate(ROWS):
        X = centers[rng.integers(0, 3, n)] + rng.normal(scale=0.3, size=(n, 3))
        np.savetxt(d / f"part-{i}.csv", X, delimiter=",", fmt="%.4f")
    return d


def _body(tmp_path, csv_dir, mode, count=1, name="dk", hps=None):
    """k-means in the project's image on the CSV blobs, the train channel sharded over the hosts."""
    train = job_channel("train", str(csv_dir), "ShardedByS3Key", ContentType="text/csv;label_size=0")
    return training_job(name, [train], tmp_path / "out", image=IMAGE, mode=mode, count=count, instance_type="local",
                        hps={"k": "3", "feature_dim": "3", "mini_batch_size": "20", **(hps or {})},
                        Environment={"SMLOCAL_ALGORITHM": "kmeans"})


@pytest.mark.parametrize("mode", ["File", "Pipe"])
def test_train_two_hosts_sharded(tmp_path, csv_dir, backend, mode):
    out = io.StringIO()
    result = run_training(parse_job(_body(tmp_path, csv_dir, mode, count=2, name=f"dk-{mode.lower()}")), backend,
                          Display(live=False, stream=out))
    assert result.status == "Completed", result.failure_reason
    assert "algo-2 | " in out.getvalue()  # logs streamed with a host prefix
    assert records_read_in_epoch0(result.plan.logs_dir / "algo-1.log") == ROWS[0] + ROWS[2]
    assert records_read_in_epoch0(result.plan.logs_dir / "algo-2.log") == ROWS[1]
    with tarfile.open(result.model_artifacts) as tar:
        assert tar.getnames() == ["model_algo-1"]
    assert not backend.client.containers.list(all=True, filters={"label": docker_backend.LABEL})


def test_failing_job(tmp_path, csv_dir, backend):
    result = run_training(parse_job(_body(tmp_path, csv_dir, "File", hps={"k": "0"}, name="dk-bad")), backend,
                          Display(live=False, stream=io.StringIO()))
    assert result.status == "Failed" and result.exit_code == 2
    assert result.failure_reason.startswith("Customer Error") and "'k'" in result.failure_reason


def test_serve_and_transform(tmp_path, csv_dir, backend):
    result = run_training(parse_job(_body(tmp_path, csv_dir, "File", name="dk-serve")), backend,
                          Display(live=False, stream=io.StringIO()))
    assert result.status == "Completed", result.failure_reason
    env = {"MODEL_SERVER_WORKERS": "1"}
    with Endpoint(result.model_artifacts, backend, env=env) as a, Endpoint(result.model_artifacts, backend, env=env) as b:
        for ep in (a, b):
            resp = ep.invoke(b"0,0,0\n6,6,0\n", "text/csv", "application/json")
            assert resp.status == 200, resp.text()
            assert len(resp.json()["predictions"]) == 2
        params = resolve_params(split_type="Line", content_type="text/csv", accept="text/csv",
                                assemble_with="Line", container=a.execution_parameters())
        outputs = run_transform(a, csv_dir, tmp_path / "transformed", params)
    assert [p.name for p in outputs] == [f"part-{i}.csv.out" for i in range(len(ROWS))]
    for path, n in zip(outputs, ROWS, strict=True):
        assert len(path.read_text().splitlines()) == n
    assert not backend.client.containers.list(all=True, filters={"label": docker_backend.LABEL})
