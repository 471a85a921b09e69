"""The sagemaker SDK's own HyperparameterTuner against ``smlocal api``, unchanged: fit -> wait ->
best_training_job -> analytics().dataframe() -> deploy the best model -> predict; and boto3's view of the
tuning job's training jobs and of a request the service would refuse."""
from __future__ import annotations

import math

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import INSTANCE, ROLE, digits

pytest.importorskip("optuna")


@pytest.fixture(scope="module")
def tuned(sdk_session, fast_sdk_clock_module):
    import sagemaker
    from sagemaker.tuner import CategoricalParameter, HyperparameterTuner, IntegerParameter

    X, _ = digits(300)
    kmeans = sagemaker.KMeans(role=ROLE, instance_count=1, instance_type=INSTANCE, k=10, epochs=1,
                              output_path=f"s3://{sdk_session.default_bucket()}/tuner-output",
                              sagemaker_session=sdk_session)
    tuner = HyperparameterTuner(kmeans, objective_metric_name="test:msd", objective_type="Minimize",
                                hyperparameter_ranges={"extra_center_factor": IntegerParameter(2, 8),
                                                       "init_method": CategoricalParameter(["random", "kmeans++"])},
                                strategy="Random", max_jobs=3, max_parallel_jobs=2, random_seed=11)
    train, test = kmeans.record_set(X[:240]), kmeans.record_set(X[240:], channel="test")
    tuner.fit([train, test], mini_batch_size=50, job_name="sdk-tune-kmeans")
    tuner.wait()
    return tuner


def test_fit_wait_best_job_and_analytics(tuned, sm):
    description = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="sdk-tune-kmeans")
    assert description["HyperParameterTuningJobStatus"] == "Completed"
    assert description["TrainingJobStatusCounters"]["Completed"] == 3
    frame = tuned.analytics().dataframe()
    assert len(frame) == 3 and set(frame["TrainingJobStatus"]) == {"Completed"}
    assert frame["extra_center_factor"].between(2, 8).all() and set(frame["init_method"]) <= {"random", "kmeans++"}
    best = tuned.best_training_job()
    assert best == frame.loc[frame["FinalObjectiveValue"].idxmin(), "TrainingJobName"]
    job = sm.describe_training_job(TrainingJobName=best)
    msd = next(m["Value"] for m in job["FinalMetricDataList"] if m["MetricName"] == "test:msd")
    assert math.isclose(msd, frame["FinalObjectiveValue"].min(), rel_tol=1e-9)
    assert job["HyperParameters"]["_tuning_objective_metric"] == "test:msd"
    assert job["TuningJobArn"] == description["HyperParameterTuningJobArn"]
    listed = {s["TrainingJobName"] for s in sm.list_training_jobs(NameContains="sdk-tune-kmeans")["TrainingJobSummaries"]}
    assert listed == set(frame["TrainingJobName"])
    summaries = sm.list_hyper_parameter_tuning_jobs(NameContains="sdk-tune")["HyperParameterTuningJobSummaries"]
    assert [s["Strategy"] for s in summaries] == ["Random"]


def test_deploy_serves_the_best_model(tuned, sm, fast_sdk_clock):
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import CSVSerializer

    predictor = tuned.deploy(initial_instance_count=1, instance_type=INSTANCE, endpoint_name="sdk-tune-best",
                             serializer=CSVSerializer(), deserializer=JSONDeserializer())
    try:
        X, _ = digits(5)
        answer = predictor.predict(X)
        assert len(answer["predictions"]) == 5 and "closest_cluster" in answer["predictions"][0]
        model = sm.describe_model(ModelName=sm.describe_endpoint_config(
            EndpointConfigName=sm.describe_endpoint(EndpointName="sdk-tune-best")["EndpointConfigName"])
            ["ProductionVariants"][0]["ModelName"])
        best = sm.describe_training_job(TrainingJobName=tuned.best_training_job())
        assert model["PrimaryContainer"]["ModelDataUrl"] == best["ModelArtifacts"]["S3ModelArtifacts"]
    finally:
        predictor.delete_endpoint()


def test_a_refused_request_names_the_field_and_starts_nothing(sm, tuned):
    body = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="sdk-tune-kmeans")
    config = dict(body["HyperParameterTuningJobConfig"])
    config["HyperParameterTuningJobObjective"] = {"Type": "Minimize", "MetricName": "validation:msd"}
    with pytest.raises(ClientError) as caught:
        sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName="sdk-tune-bad",
                                             HyperParameterTuningJobConfig=config,
                                             TrainingJobDefinition=body["TrainingJobDefinition"])
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "HyperParameterTuningJobObjective.MetricName" in caught.value.response["Error"]["Message"]
    assert sm.list_training_jobs(NameContains="sdk-tune-bad")["TrainingJobSummaries"] == []
    with pytest.raises(ClientError, match="tuning job is in status Completed"):
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="sdk-tune-kmeans")
