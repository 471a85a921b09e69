"""``smlocal export``: what AWS Batch or Kubernetes needs to run a training job on this image, printed.

The job is the CreateTrainingJob body ``smlocal train --job`` takes. Every node gets it in
``SMLOCAL_JOB_SPEC`` and lays out its own /opt/ml from it (``engine.job``); the nodes find each other
through the engine's own variables (``algorithms.cluster.discovery``).

- ``batch``: a RegisterJobDefinition request (JSON) of type ``multinode``: ``numNodes`` = InstanceCount,
  main node 0, one node range ``0:`` running ``train`` in the image on the instance type's EC2 type with its
  vCPUs and (most of) its memory (AWS Batch User Guide, "Multi-node parallel jobs").
- ``kubernetes``: a headless Service and an Indexed Job (YAML, two documents): ``completions`` =
  ``parallelism`` = InstanceCount, the pods' ``subdomain`` = the Service, so pod i is ``<job>-<i>.<job>``
  (Kubernetes docs, "Indexed Job"), CPU and memory requests from the instance type.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import NamedTuple

from smlocal.algorithms.cluster.discovery import K8S_COMPLETIONS, K8S_JOB, K8S_SERVICE
from smlocal.engine.job import JOB_SPEC_ENV
from smlocal.errors import CustomerError

TARGETS = ("batch", "kubernetes")
KVSTORE_PORTS = {"kvstore": 9000, "monitor": 9001}  # DMLC_PS_ROOT_PORT's default and the monitor's
# the ECS agent and the OS keep part of an instance's memory: a job asking for all of it never starts
MEMORY_SHARE = 0.9
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$")  # room for "-<index>" in a 63-character host name


class InstanceType(NamedTuple):
    vcpus: int
    memory_gib: int
    gpus: int = 0


# SageMaker ML instance types (aws.amazon.com/sagemaker/pricing, "Instance details"): the same EC2 sizes
INSTANCE_TYPES = {
    "ml.m5.large": InstanceType(2, 8), "ml.m5.xlarge": InstanceType(4, 16), "ml.m5.2xlarge": InstanceType(8, 32),
    "ml.m5.4xlarge": InstanceType(16, 64), "ml.m5.12xlarge": InstanceType(48, 192),
    "ml.m5.24xlarge": InstanceType(96, 384), "ml.m4.xlarge": InstanceType(4, 16),
    "ml.m4.2xlarge": InstanceType(8, 32), "ml.m4.4xlarge": InstanceType(16, 64),
    "ml.c5.xlarge": InstanceType(4, 8), "ml.c5.2xlarge": InstanceType(8, 16), "ml.c5.4xlarge": InstanceType(16, 32),
    "ml.c5.9xlarge": InstanceType(36, 72), "ml.c5.18xlarge": InstanceType(72, 144),
    "ml.r5.large": InstanceType(2, 16), "ml.r5.xlarge": InstanceType(4, 32), "ml.r5.2xlarge": InstanceType(8, 64),
    "ml.p3.2xlarge": InstanceType(8, 61, 1), "ml.p3.8xlarge": InstanceType(32, 244, 4),
    "ml.g4dn.xlarge": InstanceType(4, 16, 1), "ml.g4dn.2xlarge": InstanceType(8, 32, 1),
    "ml.g5.xlarge": InstanceType(4, 16, 1), "ml.g5.2xlarge": InstanceType(8, 32, 1),
}


def instance_type(name: str) -> InstanceType:
    if name not in INSTANCE_TYPES:
        raise CustomerError(f"ResourceConfig.InstanceType '{name}' is not one smlocal export knows; use one of: "
                            f"{', '.join(INSTANCE_TYPES)}.")
    return INSTANCE_TYPES[name]


def _job(body: dict) -> tuple[str, int, InstanceType, int | None]:
    """(TrainingJobName, InstanceCount, instance type, MaxRuntimeInSeconds) of a validated body."""
    from smlocal.runtime.jobspec import parse_job

    spec = parse_job(body)  # every field checked as smlocal train checks it
    if not body.get("TrainingJobName"):
        raise CustomerError("The job needs a TrainingJobName: it names the job definition or manifests, and "
                            "every node writes below <S3OutputPath>/<TrainingJobName>/.")
    resources = body.get("ResourceConfig", {})
    return spec.job_name, spec.instance_count, instance_type(resources.get("InstanceType", "")), spec.max_runtime


def batch_job_definition(body: dict, image: str) -> dict:
    """A RegisterJobDefinition request: a multi-node parallel job of InstanceCount nodes."""
    name, count, itype, max_runtime = _job(body)
    requirements = [{"type": "VCPU", "value": str(itype.vcpus)},
                    {"type": "MEMORY", "value": str(int(itype.memory_gib * 1024 * MEMORY_SHARE))}]
    if itype.gpus:
        requirements.append({"type": "GPU", "value": str(itype.gpus)})
    container = {
        "image": image, "command": ["train"], "resourceRequirements": requirements,
        "instanceType": body["ResourceConfig"]["InstanceType"].removeprefix("ml."),
        "environment": [{"name": JOB_SPEC_ENV, "value": json.dumps(body, separators=(",", ":"))}],
    }
    definition = {
        "jobDefinitionName": name, "type": "multinode", "platformCapabilities": ["EC2"],
        "nodeProperties": {"numNodes": count, "mainNode": 0,
                           "nodeRangeProperties": [{"targetNodes": "0:", "container": container}]},
        "retryStrategy": {"attempts": 1},
    }
    if max_runtime:
        definition["timeout"] = {"attemptDurationSeconds": max(max_runtime, 60)}  # Batch's minimum is 60 s
    return definition


def kubernetes_manifests(body: dict, image: str) -> list[dict]:
    """A headless Service and an Indexed Job whose pods find pod 0 through it."""
    name, count, itype, max_runtime = _job(body)
    k8s_name = name.lower()
    if not _K8S_NAME.match(k8s_name):
        raise CustomerError(f"TrainingJobName '{name}' cannot name a Kubernetes Job: use at most 52 letters, "
                            "digits and '-', starting and ending with a letter or digit.")
    def labels() -> dict:  # a new dict at every use: YAML would print a shared one as an anchor
        return {"app.kubernetes.io/name": "smlocal", "app.kubernetes.io/instance": k8s_name}

    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": k8s_name, "labels": labels()},
               "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": labels(),
                        "ports": [{"name": n, "port": p} for n, p in KVSTORE_PORTS.items()]}}
    memory = f"{int(itype.memory_gib * 1024 * MEMORY_SHARE)}Mi"
    resources = {"requests": {"cpu": str(itype.vcpus), "memory": memory}, "limits": {"memory": memory}}
    if itype.gpus:
        resources["limits"]["nvidia.com/gpu"] = str(itype.gpus)
    env = {K8S_COMPLETIONS: str(count), K8S_JOB: k8s_name, K8S_SERVICE: k8s_name,
           JOB_SPEC_ENV: json.dumps(body, separators=(",", ":"))}
    container = {"name": "train", "image": image, "args": ["train"], "resources": resources,
                 "env": [{"name": k, "value": v} for k, v in env.items()],
                 "ports": [{"name": n, "containerPort": p} for n, p in KVSTORE_PORTS.items()]}
    spec = {"completionMode": "Indexed", "completions": count, "parallelism": count, "backoffLimit": 0,
            "template": {"metadata": {"labels": labels()},
                         "spec": {"subdomain": k8s_name, "restartPolicy": "Never", "containers": [container]}}}
    if max_runtime:
        spec["activeDeadlineSeconds"] = max_runtime
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": k8s_name, "labels": labels()}, "spec": spec}
    return [service, job]


def export_text(target: str, body: dict, image: str) -> str:
    """What ``smlocal export`` prints: JSON for Batch, YAML documents for Kubernetes."""
    if target == "batch":
        return json.dumps(batch_job_definition(body, image), indent=2) + "\n"
    import yaml

    return yaml.safe_dump_all(kubernetes_manifests(body, image), sort_keys=False)


def _export(args) -> int:
    path = Path(args.job)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CustomerError(f"Cannot read the job file {path}: {exc.strerror}.") from None
    except ValueError as exc:
        raise CustomerError(f"Job file {path} is not valid UTF-8 JSON: {exc}") from None
    print(export_text(args.target, body, args.image), end="")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("export", help="print an AWS Batch job definition or Kubernetes manifests for a job",
                       description="Print what a cluster engine needs to train a job (a CreateTrainingJob body) on "
                                   "IMAGE over InstanceCount nodes: an AWS Batch multi-node job definition (JSON) or "
                                   "a Kubernetes headless Service and Indexed Job (YAML).")
    p.add_argument("--target", required=True, choices=TARGETS)
    p.add_argument("--job", required=True, help="the CreateTrainingJob request body (JSON file)")
    p.add_argument("--image", required=True, help="the smlocal image the nodes run (e.g. an ECR URI)")
    p.set_defaults(handler=_export)
