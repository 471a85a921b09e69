"""The SDK's LinearLearner (binary, multiclass, regressor): fit -> deploy -> predict with CSV and JSON
serializers gives what the runtime's own endpoint answers for the same model.tar.gz; transformer()
writes the same .out files as ``smlocal transform``."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from tests.api.conftest import INSTANCE, ROLE, csv_body, digits
from tests.helpers import run_cli

KINDS = {
    "binary_classifier": lambda y: (y == 0).astype("float32"),
    "multiclass_classifier": lambda y: y,
    "regressor": lambda y: y,
}


@pytest.fixture(scope="module")
def trained(sdk_session, fast_sdk_clock_module):
    """predictor type -> (fitted estimator, what fit() printed)."""
    import sagemaker

    X, y = digits(600)
    fitted = {}
    for kind, labels in KINDS.items():
        extra = {"num_classes": 10} if kind == "multiclass_classifier" else {}
        ll = sagemaker.LinearLearner(role=ROLE, instance_count=1, instance_type=INSTANCE, predictor_type=kind,
                                     epochs=3, mini_batch_size=100, num_models=2, sagemaker_session=sdk_session,
                                     **extra)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            ll.fit(ll.record_set(X, labels=labels(y)), job_name=f"sdk-ll-{kind.split('_')[0]}")
        fitted[kind] = (ll, printed.getvalue())
    return fitted


def _runtime_answers(model_data: str, s3, tmp_path, *requests: tuple[bytes, str]) -> list:
    """What the runtime's own endpoint answers (JSON) for each (body, content type) on the same model."""
    from smlocal.runtime.endpoint import Endpoint
    from smlocal.runtime.process import ProcessBackend

    bucket, key = model_data[5:].split("/", 1)
    model = tmp_path / "model.tar.gz"
    s3.download_file(bucket, key, str(model))
    answers = []
    with Endpoint(model, ProcessBackend(), workers=1) as endpoint:
        for body, content_type in requests:
            resp = endpoint.invoke(body, content_type, "application/json")
            assert resp.status == 200, resp.text()
            answers.append(resp.json())
    return answers


@pytest.mark.parametrize("kind", list(KINDS))
def test_fit_deploy_predict_csv_json(kind, trained, sdk_session, s3, tmp_path, fast_sdk_clock):
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import CSVSerializer, JSONSerializer

    ll, printed = trained[kind]
    assert "#quality_metric: host=algo-1" in printed and "Completed - Training job completed" in printed
    X, _ = digits(30)
    predictor = ll.deploy(initial_instance_count=1, instance_type=INSTANCE, serializer=CSVSerializer(),
                          deserializer=JSONDeserializer(), endpoint_name=f"sdk-ll-{kind.split('_')[0]}")
    try:
        answer = predictor.predict(X)
        instances = {"instances": [{"features": row} for row in X[:5].tolist()]}
        predictor.serializer = JSONSerializer()
        as_json = predictor.predict(instances)
        expected = _runtime_answers(ll.model_data, s3, tmp_path, (CSVSerializer().serialize(X).encode(), "text/csv"),
                                    (JSONSerializer().serialize(instances).encode(), "application/json"))
        assert answer == expected[0] and len(answer["predictions"]) == 30
        assert as_json == expected[1] and len(as_json["predictions"]) == 5
    finally:
        predictor.delete_endpoint()


def test_transformer_writes_what_smlocal_transform_writes(trained, sdk_session, s3, bucket, tmp_path,
                                                          fast_sdk_clock):
    ll, _ = trained["binary_classifier"]
    X, _ = digits(100)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for number, part in enumerate((X[:60], X[60:])):
        body = csv_body(part)
        (inputs / f"part-{number}.csv").write_bytes(body)
        s3.put_object(Bucket=bucket, Key=f"tx-in/part-{number}.csv", Body=body)
    transformer = ll.transformer(instance_count=1, instance_type=INSTANCE, output_path=f"s3://{bucket}/tx-out",
                                 accept="application/jsonlines", assemble_with="Line", strategy="MultiRecord")
    transformer.transform(f"s3://{bucket}/tx-in/", content_type="text/csv", split_type="Line",
                          job_name="sdk-ll-transform", wait=True, logs=True)
    job = sdk_session.sagemaker_client.describe_transform_job(TransformJobName="sdk-ll-transform")
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")

    model = tmp_path / "model.tar.gz"
    model_bucket, key = ll.model_data[5:].split("/", 1)
    s3.download_file(model_bucket, key, str(model))
    local_out = tmp_path / "local-out"
    done = run_cli("transform", "--model", str(model), "--input", str(inputs), "--output", str(local_out),
                   "--content-type", "text/csv", "--accept", "application/jsonlines", "--split-type", "Line",
                   "--assemble-with", "Line", "--strategy", "MultiRecord", "--backend", "process")
    assert done.returncode == 0, done.stderr
    for number in range(2):
        ours = s3.get_object(Bucket=bucket, Key=f"tx-out/part-{number}.csv.out")["Body"].read()
        assert ours == (local_out / f"part-{number}.csv.out").read_bytes()
        assert len(ours.splitlines()) == (60 if number == 0 else 40)
    assert np.isfinite(json.loads(ours.splitlines()[0])["score"])
