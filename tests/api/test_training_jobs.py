"""CreateTrainingJob / Describe / List / Stop through boto3 against ``smlocal api``, and the service's
error codes for bad requests."""
from __future__ import annotations

import io
import json
import tarfile
import time
import urllib.request
from datetime import datetime

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from smlocal.api.protocol import JSON_11
from tests.api.conftest import ROLE, csv_body, digits, wait_for

KMEANS_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"


def kmeans_job(name: str, bucket: str, **overrides) -> dict:
    body = {
        "TrainingJobName": name, "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": KMEANS_IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": {"k": "10", "feature_dim": "64", "mini_batch_size": "200"},
        "InputDataConfig": [
            {"ChannelName": channel, "ContentType": "text/csv;label_size=0",
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/digits/{channel}/"}}}
            for channel in ("train", "test")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="module")
def digits_csv(s3, bucket):
    X, _ = digits(400)
    s3.put_object(Bucket=bucket, Key="digits/train/part-0.csv", Body=csv_body(X[:300]))
    s3.put_object(Bucket=bucket, Key="digits/test/part-0.csv", Body=csv_body(X[300:]))
    return bucket


@pytest.fixture(scope="module")
def completed_job(sm, digits_csv):
    sm.create_training_job(**kmeans_job("api-kmeans-1", digits_csv))
    return wait_for(lambda: sm.describe_training_job(TrainingJobName="api-kmeans-1"), "TrainingJobStatus")


def test_a_kmeans_job_runs_to_completed_with_artifacts_and_metrics(completed_job, s3, bucket):
    job = completed_job
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["SecondaryStatus"] == "Completed"
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == ["Starting", "Training", "Completed"]
    assert isinstance(job["CreationTime"], datetime) and job["TrainingEndTime"] >= job["TrainingStartTime"]
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{bucket}/output/api-kmeans-1/output/model.tar.gz"
    s3.head_object(Bucket=bucket, Key="output/api-kmeans-1/output/model.tar.gz")
    names = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert "test:msd" in names and names["test:msd"] > 0
    assert job["HyperParameters"]["k"] == "10" and job["RoleArn"] == ROLE
    assert job["TrainingJobArn"].endswith(":training-job/api-kmeans-1")


def test_list_filters_sorts_and_pages(sm, completed_job, digits_csv):
    sm.create_training_job(**kmeans_job("api-kmeans-2", digits_csv))
    wait_for(lambda: sm.describe_training_job(TrainingJobName="api-kmeans-2"), "TrainingJobStatus")
    found = sm.list_training_jobs(NameContains="api-kmeans", SortBy="Name", SortOrder="Ascending")
    assert [j["TrainingJobName"] for j in found["TrainingJobSummaries"]] == ["api-kmeans-1", "api-kmeans-2"]
    oldest = sm.list_training_jobs(NameContains="api-kmeans", MaxResults=1)  # CreationTime, Ascending
    assert [j["TrainingJobName"] for j in oldest["TrainingJobSummaries"]] == ["api-kmeans-1"]
    newest = sm.list_training_jobs(NameContains="api-kmeans", MaxResults=1, SortOrder="Descending")
    assert [j["TrainingJobName"] for j in newest["TrainingJobSummaries"]] == ["api-kmeans-2"]
    rest = sm.list_training_jobs(NameContains="api-kmeans", MaxResults=1, SortOrder="Descending",
                                 NextToken=newest["NextToken"])
    assert [j["TrainingJobName"] for j in rest["TrainingJobSummaries"]] == ["api-kmeans-1"]
    assert "NextToken" not in rest
    assert sm.list_training_jobs(NameContains="api-kmeans", StatusEquals="Failed")["TrainingJobSummaries"] == []
    later = sm.list_training_jobs(CreationTimeAfter=completed_job["CreationTime"], NameContains="api-kmeans")
    assert [j["TrainingJobName"] for j in later["TrainingJobSummaries"]] == ["api-kmeans-2"]
    paginator = sm.get_paginator("list_training_jobs")
    pages = list(paginator.paginate(NameContains="api-kmeans", PaginationConfig={"PageSize": 1}))
    assert sum(len(p["TrainingJobSummaries"]) for p in pages) == 2


def _script_source(script: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = script.encode()
        info = tarfile.TarInfo("sleepy.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_stop_training_job_stops_a_running_job(sm, s3, digits_csv):
    s3.put_object(Bucket=digits_csv, Key="code/sleepy.tar.gz",
                  Body=_script_source("import time\nprint('sleeping', flush=True)\ntime.sleep(120)\n"))
    body = kmeans_job("api-sleepy", digits_csv, HyperParameters={
        "sagemaker_program": json.dumps("sleepy.py"),
        "sagemaker_submit_directory": json.dumps(f"s3://{digits_csv}/code/sleepy.tar.gz")})
    body["AlgorithmSpecification"] = {"TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                                                        "sagemaker-scikit-learn:1.2-1-cpu-py3",
                                      "TrainingInputMode": "File"}
    sm.create_training_job(**body)
    wait_for(lambda: sm.describe_training_job(TrainingJobName="api-sleepy"), "SecondaryStatus", 60,
             done=("Training",))
    started = time.monotonic()
    sm.stop_training_job(TrainingJobName="api-sleepy")
    assert sm.describe_training_job(TrainingJobName="api-sleepy")["TrainingJobStatus"] in ("Stopping", "Stopped")
    job = wait_for(lambda: sm.describe_training_job(TrainingJobName="api-sleepy"), "TrainingJobStatus", 60)
    assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "Stopped"
    assert time.monotonic() - started < 30
    with pytest.raises(ClientError) as err:
        sm.stop_training_job(TrainingJobName="api-sleepy")
    assert err.value.response["Error"]["Code"] == "ValidationException"


# ----------------------------------------------------------------------------------------- errors
def _code(err) -> str:
    return err.value.response["Error"]["Code"]


def test_unknown_operation_is_answered_and_the_server_stays_up(api_server, sm):
    request = urllib.request.Request(api_server.url, data=b"{}", method="POST",
                                     headers={"X-Amz-Target": "SageMaker.FlyToTheMoon", "Content-Type": JSON_11})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 400
    answer = json.loads(err.value.read())
    assert answer["__type"] == "UnknownOperationException" and "FlyToTheMoon" in answer["message"]
    assert "TrainingJobSummaries" in sm.list_training_jobs()


def test_missing_field_and_wrong_type_name_the_field(boto, sm):
    raw = boto.client("sagemaker", config=Config(parameter_validation=False))
    with pytest.raises(ClientError) as err:
        raw.create_training_job(TrainingJobName="no-role", AlgorithmSpecification={"TrainingInputMode": "File"},
                                OutputDataConfig={"S3OutputPath": "s3://x/y"},
                                ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                                "VolumeSizeInGB": 1},
                                StoppingCondition={"MaxRuntimeInSeconds": 60})
    assert _code(err) == "ValidationException" and "'RoleArn'" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        raw.describe_training_job(TrainingJobName=42)
    assert _code(err) == "SerializationException" and "TrainingJobName" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        raw.list_training_jobs(MaxResults="ten")
    assert _code(err) == "SerializationException" and "MaxResults" in err.value.response["Error"]["Message"]
    assert "TrainingJobSummaries" in sm.list_training_jobs()


def test_runtime_validation_errors_are_validation_exceptions(sm, digits_csv):
    body = kmeans_job("api-bad-channel", digits_csv)
    body["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataDistributionType"] = "Everywhere"
    with pytest.raises(ClientError) as err:
        sm.create_training_job(**body)
    assert _code(err) == "ValidationException"
    assert "S3DataDistributionType" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        sm.describe_training_job(TrainingJobName="api-bad-channel")
    assert _code(err) == "ValidationException"


def test_unknown_job_and_duplicate_name(sm, completed_job, digits_csv):
    """An unknown training job: ValidationException "Requested resource not found.", as the service answers
    (github.com/aws/aws-sdk/issues/165), not the ResourceNotFound its model names."""
    with pytest.raises(ClientError) as err:
        sm.describe_training_job(TrainingJobName="no-such-job")
    assert (_code(err), err.value.response["Error"]["Message"]) == ("ValidationException",
                                                                    "Requested resource not found.")
    with pytest.raises(ClientError) as err:
        sm.stop_training_job(TrainingJobName="no-such-job")
    assert _code(err) == "ValidationException"
    with pytest.raises(ClientError) as err:
        sm.describe_transform_job(TransformJobName="no-such-job")
    assert _code(err) == "ResourceNotFound" and "no-such-job" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        sm.create_training_job(**kmeans_job("api-kmeans-1", digits_csv))
    assert _code(err) == "ResourceInUse" and "already exists" in err.value.response["Error"]["Message"]
    assert sm.describe_training_job(TrainingJobName="api-kmeans-1")["TrainingJobStatus"] == "Completed"


def test_more_instances_than_the_local_quota_is_resource_limit_exceeded(sm, digits_csv, api_server):
    limit = api_server.max_training_instances
    body = kmeans_job("api-too-many", digits_csv)
    body["ResourceConfig"]["InstanceCount"] = limit + 1
    with pytest.raises(sm.exceptions.ResourceLimitExceeded) as err:
        sm.create_training_job(**body)
    message = err.value.response["Error"]["Message"]
    assert f"'ml.m5.large for training job usage' is {limit} Instances" in message
    assert f"request delta of {limit + 1} Instances" in message and "--max-training-instances" in message
    with pytest.raises(ClientError) as err:
        sm.describe_training_job(TrainingJobName="api-too-many")
    assert _code(err) == "ValidationException"  # nothing was created
