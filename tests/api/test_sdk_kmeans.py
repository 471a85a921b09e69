"""The sagemaker SDK's own KMeans flow against ``smlocal api``: record_set -> fit (wait and logs, the
defaults) -> deploy -> predict -> delete_endpoint, as an SDK notebook writes it."""
from __future__ import annotations

import contextlib
import io

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import INSTANCE, ROLE, digits


def _kmeans(sdk_session, **hyperparameters):
    import sagemaker

    return sagemaker.KMeans(role=ROLE, instance_count=1, instance_type=INSTANCE, k=10,
                            output_path=f"s3://{sdk_session.default_bucket()}/kmeans-output",
                            sagemaker_session=sdk_session, **hyperparameters)


@pytest.fixture(scope="module")
def fitted(sdk_session, fast_sdk_clock_module):
    """(the estimator, what fit() printed)."""
    X, _ = digits(500)
    kmeans = _kmeans(sdk_session, mini_batch_size=100)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        kmeans.fit(kmeans.record_set(X), job_name="sdk-kmeans-fit")
    return kmeans, printed.getvalue()


def test_fit_prints_the_container_lines_and_returns(fitted, sdk_session):
    kmeans, out = fitted
    assert "#quality_metric: host=algo-1, train msd <loss>=" in out  # streamed through the Logs API
    assert "Completed - Training job completed" in out
    job = sdk_session.describe_training_job("sdk-kmeans-fit")
    assert job["TrainingJobStatus"] == "Completed"
    assert kmeans.model_data == job["ModelArtifacts"]["S3ModelArtifacts"]


def test_a_bad_hyperparameter_fails_fit_with_the_failure_reason(sdk_session, fast_sdk_clock):
    """The generic Estimator with the built-in's image: the SDK does not check these hyperparameters."""
    import sagemaker
    import sagemaker.exceptions

    X, _ = digits(200)
    records = _kmeans(sdk_session).record_set(X, channel="train")
    estimator = sagemaker.estimator.Estimator(
        image_uri=sagemaker.image_uris.retrieve("kmeans", "eu-west-1"), role=ROLE, instance_count=1,
        instance_type=INSTANCE, sagemaker_session=sdk_session,
        hyperparameters={"k": "10", "feature_dim": "64", "mini_batch_size": "-5"})
    with pytest.raises(sagemaker.exceptions.UnexpectedStatusException) as err:
        estimator.fit({"train": records.records_s3_input()}, job_name="sdk-kmeans-bad")
    job = sdk_session.describe_training_job("sdk-kmeans-bad")
    assert job["TrainingJobStatus"] == "Failed"
    assert "mini_batch_size" in job["FailureReason"]
    assert job["FailureReason"][:60] in str(err.value)


def _closest(records) -> list[float]:
    return [r.label["closest_cluster"].float32_tensor.values[0] for r in records]


def test_deploy_predict_matches_the_runtime_endpoint_and_delete_stops_it(fitted, sdk_session, s3, tmp_path,
                                                                         fast_sdk_clock, api_server):
    from sagemaker.amazon.common import RecordDeserializer, RecordSerializer

    from smlocal.runtime.endpoint import Endpoint
    from smlocal.runtime.process import ProcessBackend

    kmeans, _ = fitted
    X, _ = digits(40)
    predictor = kmeans.deploy(initial_instance_count=1, instance_type=INSTANCE, endpoint_name="sdk-kmeans-ep")
    assert isinstance(predictor.serializer, RecordSerializer)
    answer = _closest(predictor.predict(X))
    assert len(answer) == 40 and len(set(answer)) > 3

    bucket, key = kmeans.model_data[5:].split("/", 1)
    model = tmp_path / "model.tar.gz"
    s3.download_file(bucket, key, str(model))
    with Endpoint(model, ProcessBackend(), workers=1) as endpoint:
        resp = endpoint.invoke(RecordSerializer().serialize(X), "application/x-recordio-protobuf",
                               "application/x-recordio-protobuf")
    expected = _closest(RecordDeserializer().deserialize(io.BytesIO(resp.body), resp.content_type))
    assert answer == expected

    described = sdk_session.sagemaker_client.describe_endpoint(EndpointName="sdk-kmeans-ep")
    assert described["EndpointStatus"] == "InService"
    server = api_server.services.endpoints.live["sdk-kmeans-ep"][0]  # the runtime Endpoint behind it
    assert server.ping()
    predictor.delete_endpoint()
    names = [e["EndpointName"] for e in sdk_session.sagemaker_client.list_endpoints()["Endpoints"]]
    assert "sdk-kmeans-ep" not in names
    assert server.run is None and not server.ping()
    with pytest.raises(ClientError, match="Could not find endpoint configuration") as err:
        sdk_session.sagemaker_client.describe_endpoint_config(EndpointConfigName="sdk-kmeans-ep")
    assert err.value.response["Error"]["Code"] == "ValidationException"
