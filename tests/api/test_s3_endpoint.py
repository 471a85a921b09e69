"""``smlocal api --s3-endpoint-url``: S3 lives in a separate server (a moto server process on loopback,
standing in for MinIO or real S3); an SDK job reads its channel and writes its model there."""
from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError

from smlocal.runtime.ports import free_port
from tests.api.conftest import INSTANCE, ROLE, ApiProcess, digits
from tests.s3server import FAKE_CREDENTIALS, REGION, start_moto_server


@pytest.fixture
def external_s3(api_env, tmp_path):
    pytest.importorskip("moto.server")
    server = start_moto_server(log_dir=tmp_path)
    yield server
    server.stop()


def test_an_sdk_job_reads_and_writes_the_external_s3(external_s3, tmp_path, fast_sdk_clock):
    import sagemaker

    import smlocal
    from smlocal.api.session import LocalBotoSession

    env = {**os.environ, **FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": REGION}  # the jobs' S3 credentials
    api = ApiProcess(tmp_path / "state", free_port(), env, "--s3-endpoint-url", external_s3.endpoint_url)
    try:
        assert f"export AWS_ENDPOINT_URL_S3={external_s3.endpoint_url}\n" in api.banner
        session = smlocal.sagemaker_session(api.url, s3_endpoint_url=external_s3.endpoint_url)
        kmeans = sagemaker.KMeans(role=ROLE, instance_count=1, instance_type=INSTANCE, k=5, sagemaker_session=session,
                                  output_path=f"s3://{session.default_bucket()}/external-output")
        X, _ = digits(200)
        kmeans.fit(kmeans.record_set(X), job_name="external-s3-job")
        job = session.describe_training_job("external-s3-job")
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        channel = job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
        bucket, key = job["ModelArtifacts"]["S3ModelArtifacts"][5:].split("/", 1)
        assert key == "external-output/external-s3-job/output/model.tar.gz"
        s3 = external_s3.client()
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0  # written to the external S3
        assert external_s3.log_path.read_text().count(f"GET /{channel[5:].split('/', 1)[0]}/") >= 2  # read there
        with pytest.raises(ClientError, match="AWS_ENDPOINT_URL_S3"):  # S3 sent to the API says where S3 is
            LocalBotoSession(api.url).client("s3").list_buckets()
    finally:
        api.stop()
