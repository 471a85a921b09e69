"""The SDK's SKLearn estimator on examples/sklearn (script mode from an s3:// sourcedir.tar.gz, served
with its inference.py), and Pipe mode with ShardedByS3Key over 2 instances."""
from __future__ import annotations

import contextlib
import io
import shutil
import tarfile

import pytest

from tests.api.conftest import INSTANCE, ROLE, digits
from tests.helpers import REPO, needs_mxnet

EXAMPLE = REPO / "examples" / "sklearn"
ROWS = b"3,-3,0\n-3,3,0\n"


def test_sklearn_estimator_fit_deploy_predict(sdk_session, s3, tmp_path, fast_sdk_clock):
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import CSVSerializer
    from sagemaker.sklearn import SKLearn

    from smlocal.runtime.endpoint import Endpoint
    from smlocal.runtime.process import ProcessBackend

    train = sdk_session.upload_data(str(EXAMPLE / "data" / "train.csv"), key_prefix="sklearn-data")
    estimator = SKLearn(entry_point="train.py", source_dir=str(EXAMPLE), framework_version="1.2-1", role=ROLE,
                        instance_count=1, instance_type=INSTANCE, hyperparameters={"C": 0.5},
                        sagemaker_session=sdk_session)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        estimator.fit({"train": train}, job_name="sdk-sklearn")
    assert "training accuracy:" in printed.getvalue()  # the user's script's own print, through the Logs API
    predictor = estimator.deploy(initial_instance_count=1, instance_type=INSTANCE, entry_point="inference.py",
                                 serializer=CSVSerializer(), deserializer=JSONDeserializer(),
                                 endpoint_name="sdk-sklearn")
    try:
        answer = predictor.predict(ROWS.decode())
    finally:
        predictor.delete_endpoint()
    # smlocal serve's way (README): the model with code/inference.py beside it
    bucket, key = estimator.model_data[5:].split("/", 1)
    s3.download_file(bucket, key, str(tmp_path / "model.tar.gz"))
    model_dir = tmp_path / "sk-model"
    with tarfile.open(tmp_path / "model.tar.gz") as tar:
        tar.extractall(model_dir, filter="data")
    (model_dir / "code").mkdir()
    shutil.copy(EXAMPLE / "inference.py", model_dir / "code")
    with Endpoint(model_dir, ProcessBackend(), workers=1) as endpoint:
        expected = endpoint.invoke(ROWS, "text/csv", "application/json").json()
    assert answer == expected and answer["probabilities"][0] > 0.5 > answer["probabilities"][1]


@needs_mxnet
def test_pipe_mode_sharded_by_s3_key_on_two_instances(sdk_session, boto, fast_sdk_clock):
    import sagemaker

    X, _ = digits(400)
    kmeans = sagemaker.KMeans(role=ROLE, instance_count=2, instance_type=INSTANCE, k=5, input_mode="Pipe",
                              mini_batch_size=50, sagemaker_session=sdk_session,
                              output_path=f"s3://{sdk_session.default_bucket()}/pipe-output")
    records = kmeans.record_set(X)
    assert records.distribution == "ShardedByS3Key"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        kmeans.fit(records, job_name="sdk-kmeans-pipe")
    job = sdk_session.describe_training_job("sdk-kmeans-pipe")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["AlgorithmSpecification"]["TrainingInputMode"] == "Pipe"
    assert job["ResourceConfig"]["InstanceCount"] == 2
    streams = boto.client("logs").describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                                       logStreamNamePrefix="sdk-kmeans-pipe/")["logStreams"]
    assert sorted(s["logStreamName"].split("/")[1].rsplit("-", 1)[0] for s in streams) == ["algo-1", "algo-2"]
    assert "[algo-2-" in printed.getvalue() or "algo-2" in printed.getvalue()
