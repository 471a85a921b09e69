"""``smlocal api --backend docker``: the SDK's KMeans fit -> deploy -> predict with the real image, the
training host and the endpoint's server each a container (host network, loopback only)."""
from __future__ import annotations

import contextlib
import io
import json
import os

import pytest

from smlocal.runtime.ports import free_port
from tests.api.conftest import INSTANCE, ROLE, ApiProcess, api_env, digits, fast_sdk_clock  # noqa: F401 - fixtures

pytestmark = pytest.mark.container


def test_sdk_kmeans_on_the_docker_backend(smlocal_image, api_env, tmp_path, fast_sdk_clock, docker_client):  # noqa: F811
    import sagemaker

    import smlocal

    api = ApiProcess(tmp_path / "state", free_port(), dict(os.environ), "--backend", "docker",
                     "--image", smlocal_image)
    try:
        session = smlocal.sagemaker_session(api.url)
        kmeans = sagemaker.KMeans(role=ROLE, instance_count=1, instance_type=INSTANCE, k=10, mini_batch_size=100,
                                  output_path=f"s3://{session.default_bucket()}/docker-kmeans",
                                  sagemaker_session=session)
        X, _ = digits(500)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            kmeans.fit(kmeans.record_set(X), job_name="docker-kmeans")
        assert "#quality_metric: host=algo-1, train msd <loss>=" in printed.getvalue()
        job = session.describe_training_job("docker-kmeans")
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        record = tmp_path / "state" / "work" / "training-jobs" / "docker-kmeans" / "training-job.json"
        assert json.loads(record.read_text())["Backend"] == "docker"  # the runtime's own record of the job
        predictor = kmeans.deploy(initial_instance_count=1, instance_type=INSTANCE, endpoint_name="docker-kmeans")
        try:
            names = [c.name for c in docker_client.containers.list()]
            assert any("docker-kmeans" in n for n in names), names  # the endpoint's server is a container
            answer = predictor.predict(X[:20])
        finally:
            predictor.delete_endpoint()
        assert len(answer) == 20 and len({r.label["closest_cluster"].float32_tensor.values[0] for r in answer}) > 2
    finally:
        api.stop()
