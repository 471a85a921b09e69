"""``smlocal api`` as a command: its export lines, endpoint errors over boto3, the AWS CLI, and a restart
that keeps jobs, S3 objects and a live endpoint."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from botocore.exceptions import ClientError

from smlocal.runtime.ports import free_port
from tests.api.conftest import ROLE, ApiProcess, csv_body, digits, wait_for
from tests.api.test_training_jobs import kmeans_job


@pytest.fixture
def cli_env(api_env):
    return dict(os.environ)


def _client(url: str, service: str):
    from smlocal.api.session import LocalBotoSession

    return LocalBotoSession(url).client(service)


def _setup(url: str) -> bytes:
    """A trained model behind an endpoint; returns the endpoint's answer."""
    s3, sm = _client(url, "s3"), _client(url, "sagemaker")
    s3.create_bucket(Bucket="restart-bucket")
    X, _ = digits(300)
    for channel, rows in (("train", X[:250]), ("test", X[250:])):
        s3.put_object(Bucket="restart-bucket", Key=f"digits/{channel}/part.csv", Body=csv_body(rows))
    sm.create_training_job(**kmeans_job("restart-job", "restart-bucket"))
    job = wait_for(lambda: sm.describe_training_job(TrainingJobName="restart-job"), "TrainingJobStatus")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    sm.create_model(ModelName="restart-model", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1",
        "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]})
    for config in ("restart-config", "restart-config-2"):
        sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "restart-model", "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="restart-ep", EndpointConfigName="restart-config")
    ep = wait_for(lambda: sm.describe_endpoint(EndpointName="restart-ep"), "EndpointStatus",
                  done=("InService", "Failed"))
    assert ep["EndpointStatus"] == "InService", ep.get("FailureReason")
    return _invoke(url)


def _invoke(url: str) -> bytes:
    X, _ = digits(5)
    answer = _client(url, "sagemaker-runtime").invoke_endpoint(
        EndpointName="restart-ep", Body=csv_body(X), ContentType="text/csv", Accept="application/json",
        CustomAttributes="trace=1")
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    return answer["Body"].read()


def _endpoint_errors(url: str) -> None:
    sm, runtime = _client(url, "sagemaker"), _client(url, "sagemaker-runtime")
    with pytest.raises(ClientError, match="Cannot create already existing endpoint") as err:
        sm.create_endpoint(EndpointName="restart-ep", EndpointConfigName="restart-config")
    assert err.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError, match="not found") as err:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", Body=b"1,2", ContentType="text/csv")
    assert err.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(runtime.exceptions.ModelError) as err:
        runtime.invoke_endpoint(EndpointName="restart-ep", Body=b"1,2", ContentType="text/csv")
    assert err.value.response["OriginalStatusCode"] >= 400
    with pytest.raises(ClientError, match="Could not find model"):
        sm.create_endpoint_config(EndpointConfigName="bad-config", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "no-such-model", "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])
    sm.update_endpoint(EndpointName="restart-ep", EndpointConfigName="restart-config-2")
    ep = wait_for(lambda: sm.describe_endpoint(EndpointName="restart-ep"), "EndpointStatus", done=("InService",))
    assert ep["EndpointConfigName"] == "restart-config-2"


def _aws(url: str, env: dict, *args: str) -> dict:
    from smlocal.api.session import environment

    aws = shutil.which("aws", path=os.path.dirname(sys.executable)) or "aws"
    done = subprocess.run([aws, *args, "--output", "json"], env={**env, **environment(url)}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_restart_keeps_jobs_objects_and_the_live_endpoint_and_the_cli_reads_them(tmp_path, cli_env):
    pytest.importorskip("awscli")
    state, port = tmp_path / "state", free_port()
    server = ApiProcess(state, port, cli_env)
    try:
        assert any(f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port}" in line for line in server.banner)
        before = _setup(server.url)
        _endpoint_errors(server.url)
        before = _invoke(server.url)
    finally:
        server.stop()
    time.sleep(0.5)
    server = ApiProcess(state, port, cli_env)
    try:
        sm = _client(server.url, "sagemaker")
        job = sm.describe_training_job(TrainingJobName="restart-job")
        assert job["TrainingJobStatus"] == "Completed"
        key = job["ModelArtifacts"]["S3ModelArtifacts"].split("/", 3)[3]
        assert _client(server.url, "s3").head_object(Bucket="restart-bucket", Key=key)["ContentLength"] > 0
        ep = wait_for(lambda: sm.describe_endpoint(EndpointName="restart-ep"), "EndpointStatus",
                      done=("InService", "Failed"))
        assert ep["EndpointStatus"] == "InService", ep.get("FailureReason")
        assert _invoke(server.url) == before
        listed = _aws(server.url, cli_env, "sagemaker", "list-training-jobs")
        assert [j["TrainingJobName"] for j in listed["TrainingJobSummaries"]] == ["restart-job"]
        described = _aws(server.url, cli_env, "sagemaker", "describe-training-job", "--training-job-name",
                         "restart-job")
        assert described["TrainingJobStatus"] == "Completed"
        assert described["ModelArtifacts"] == job["ModelArtifacts"]
        endpoints = _aws(server.url, cli_env, "sagemaker", "list-endpoints")
        assert [e["EndpointStatus"] for e in endpoints["Endpoints"]] == ["InService"]
    finally:
        server.stop()
