"""Two clients at once against one ``smlocal api``: several training jobs, models, endpoint configs and
endpoints created side by side (while both also list), then every record whole and listed once."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from tests.api.conftest import ROLE, csv_body, digits, wait_for
from tests.api.test_training_jobs import KMEANS_IMAGE, kmeans_job

CLIENTS, JOBS, MODELS = 2, 2, 4


def _client(api_server, service: str):
    from smlocal.api.session import LocalBotoSession

    return LocalBotoSession(api_server.url).client(service)  # a client (and connection pool) per thread


def _create(api_server, bucket: str, client: int) -> list[str]:
    """One client's burst: its jobs, models and endpoint configs, listing in between."""
    sm = _client(api_server, "sagemaker")
    jobs = [f"conc-{client}-{j}" for j in range(JOBS)]
    for job in jobs:
        sm.create_training_job(**kmeans_job(job, bucket))
        sm.list_training_jobs(NameContains="conc-")
    for m in range(MODELS):
        name = f"conc-model-{client}-{m}"
        sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": KMEANS_IMAGE, "ModelDataUrl": f"s3://{bucket}/output/{jobs[0]}/output/model.tar.gz"})
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])
        sm.list_models(NameContains="conc-")
    return jobs


def _serve(api_server, client: int) -> bytes:
    """One client's endpoint, from its first model, once its jobs are done; the endpoint's answer."""
    sm, runtime = _client(api_server, "sagemaker"), _client(api_server, "sagemaker-runtime")
    for j in range(JOBS):
        job = wait_for(lambda: sm.describe_training_job(TrainingJobName=f"conc-{client}-{j}"), "TrainingJobStatus")
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    name = f"conc-ep-{client}"
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"conc-model-{client}-0")
    ep = wait_for(lambda: sm.describe_endpoint(EndpointName=name), "EndpointStatus", done=("InService", "Failed"))
    assert ep["EndpointStatus"] == "InService", ep.get("FailureReason")
    X, _ = digits(3)
    return runtime.invoke_endpoint(EndpointName=name, Body=csv_body(X), ContentType="text/csv",
                                   Accept="application/json")["Body"].read()


def _names(pages, key: str, name_key: str) -> list[str]:
    return [item[name_key] for page in pages for item in page[key]]


def test_two_clients_creating_jobs_models_and_endpoints_at_once(api_server, sm, s3):
    s3.create_bucket(Bucket="concurrency")
    X, _ = digits(300)
    for channel, rows in (("train", X[:250]), ("test", X[250:])):
        s3.put_object(Bucket="concurrency", Key=f"digits/{channel}/part.csv", Body=csv_body(rows))
    with ThreadPoolExecutor(CLIENTS) as pool:
        created = [f.result() for f in [pool.submit(_create, api_server, "concurrency", c) for c in range(CLIENTS)]]
        answers = [f.result() for f in [pool.submit(_serve, api_server, c) for c in range(CLIENTS)]]
    try:
        jobs = sorted(j for batch in created for j in batch)
        assert all(len(json.loads(a)["predictions"]) == 3 for a in answers)
        listed = _names(sm.get_paginator("list_training_jobs").paginate(
            NameContains="conc-", PaginationConfig={"PageSize": 3}), "TrainingJobSummaries", "TrainingJobName")
        assert sorted(listed) == jobs  # every job once, across pages
        models = _names(sm.get_paginator("list_models").paginate(NameContains="conc-model-"), "Models", "ModelName")
        assert sorted(models) == sorted(f"conc-model-{c}-{m}" for c in range(CLIENTS) for m in range(MODELS))
        configs = _names([sm.list_endpoint_configs(NameContains="conc-model-", MaxResults=100)], "EndpointConfigs",
                         "EndpointConfigName")
        assert sorted(configs) == sorted(models)
        endpoints = _names([sm.list_endpoints(NameContains="conc-ep-")], "Endpoints", "EndpointName")
        assert sorted(endpoints) == [f"conc-ep-{c}" for c in range(CLIENTS)]
        for job in jobs:  # whole records: the request as given, the outcome
            described = sm.describe_training_job(TrainingJobName=job)
            assert described["TrainingJobName"] == job and described["HyperParameters"]["k"] == "10"
            assert described["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"/{job}/output/model.tar.gz")
        for path in api_server.store.root.glob("*/*.json"):  # every stored record parses
            json.loads(path.read_text())
    finally:
        for c in range(CLIENTS):
            sm.delete_endpoint(EndpointName=f"conc-ep-{c}")
