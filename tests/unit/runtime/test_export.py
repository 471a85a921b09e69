"""``smlocal export``: the Batch job definition validates against botocore's RegisterJobDefinition input
shape; the Kubernetes manifests load as the kubernetes client's V1Service / V1Job, every field kept."""
from __future__ import annotations

import json

import pytest
import yaml

from smlocal.errors import CustomerError
from smlocal.runtime.export import export_text
from tests.helpers import job_channel, run_cli, training_job

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/smlocal:latest"


def _body(tmp_path, **resources) -> dict:
    body = training_job("Km-Demo", [job_channel("train", "s3://bucket/train/", "ShardedByS3Key",
                                                ContentType="text/csv;label_size=0")], tmp_path,
                        image="382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1",
                        hps={"k": "4", "feature_dim": "6"},
                        count=3, instance_type="ml.p3.2xlarge", StoppingCondition={"MaxRuntimeInSeconds": 3600})
    body["OutputDataConfig"] = {"S3OutputPath": "s3://bucket/out/"}
    body["ResourceConfig"].update(resources)
    return body


def test_the_batch_job_definition_is_a_valid_register_job_definition_request(tmp_path):
    import botocore.session
    from botocore.validate import validate_parameters

    body = _body(tmp_path)
    definition = json.loads(export_text("batch", body, IMAGE))
    batch = botocore.session.get_session().get_service_model("batch")
    shape = batch.operation_model("RegisterJobDefinition").input_shape
    validate_parameters(definition, shape)  # raises ParamValidationError naming any wrong field
    nodes = definition["nodeProperties"]
    assert definition["type"] == "multinode" and nodes["numNodes"] == 3 and nodes["mainNode"] == 0
    container = nodes["nodeRangeProperties"][0]["container"]
    assert container["image"] == IMAGE and container["command"] == ["train"]
    assert container["instanceType"] == "p3.2xlarge"
    assert {r["type"]: r["value"] for r in container["resourceRequirements"]} == {"VCPU": "8", "MEMORY": "56217",
                                                                                  "GPU": "1"}
    assert json.loads(container["environment"][0]["value"]) == body  # the nodes' job spec
    assert definition["timeout"] == {"attemptDurationSeconds": 3600}


def test_the_kubernetes_manifests_load_as_a_service_and_an_indexed_job(tmp_path):
    from kubernetes.client import ApiClient, V1Job, V1Service

    service_doc, job_doc = yaml.safe_load_all(export_text("kubernetes", _body(tmp_path), IMAGE))
    client = ApiClient()
    service = client.deserialize(json.dumps(service_doc), "V1Service", "application/json")
    job = client.deserialize(json.dumps(job_doc), "V1Job", "application/json")
    assert isinstance(service, V1Service) and isinstance(job, V1Job)
    # deserializing drops unknown fields: the round trip proves every field is a real one
    assert client.sanitize_for_serialization(service) == service_doc
    assert client.sanitize_for_serialization(job) == job_doc
    assert service.spec.cluster_ip == "None" and service.metadata.name == "km-demo"
    spec = job.spec
    assert (spec.completion_mode, spec.completions, spec.parallelism) == ("Indexed", 3, 3)
    pod = spec.template.spec
    assert pod.subdomain == service.metadata.name and service.spec.selector == spec.template.metadata.labels
    env = {e.name: e.value for e in pod.containers[0].env}
    assert [env[k] for k in ("SMLOCAL_K8S_COMPLETIONS", "SMLOCAL_K8S_JOB", "SMLOCAL_K8S_SERVICE")] == \
        ["3", "km-demo", "km-demo"]
    assert pod.containers[0].resources.limits["nvidia.com/gpu"] == "1"


def test_an_unknown_instance_type_names_the_known_ones(tmp_path):
    with pytest.raises(CustomerError, match="InstanceType 'local'.*ml.m5.large"):
        export_text("batch", _body(tmp_path, InstanceType="local"), IMAGE)


def test_the_cli_prints_the_definition(tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps(_body(tmp_path)))
    result = run_cli("export", "--target", "batch", "--job", str(job), "--image", IMAGE, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["jobDefinitionName"] == "Km-Demo"
