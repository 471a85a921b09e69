"""A training job on a node that nobody laid /opt/ml out for: the node reads the job spec and does it.

The job is a CreateTrainingJob body (what ``runtime.jobspec.parse_job`` validates), given as JSON in
``SMLOCAL_JOB_SPEC`` or in the file ``SMLOCAL_JOB_SPEC_FILE`` names (a mounted ConfigMap or volume). With
this node's ``discovery.Placement`` the runtime's own plan (``plan.plan_training``) says what this host
gets; the node writes hyperparameters.json and inputdataconfig.json, and its File-mode channels come
through the runtime's one reader (``sources``): local paths (a shared volume) linked in place, ``s3://``
objects downloaded, under ``ShardedByS3Key`` only this node's shard. After the algorithm the first node
puts ``model.tar.gz`` at ``<S3OutputPath>/<job>/output/`` (an ``s3://`` URI or a shared directory).

resourceconfig.json is not written: the engine's environment stays the one source of the hosts.
"""
from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from smlocal.algorithms.cluster.discovery import Placement
from smlocal.environment import Paths
from smlocal.errors import CustomerError

JOB_SPEC_ENV = "SMLOCAL_JOB_SPEC"
JOB_SPEC_FILE_ENV = "SMLOCAL_JOB_SPEC_FILE"
MODEL_TAR = "model.tar.gz"

log = logging.getLogger("smlocal")


@dataclass(frozen=True)
class EngineJob:
    """This node's part of the job: the validated spec, its laid-out tree and its environment."""

    spec: Any  # runtime.jobspec.JobSpec
    base: Path
    rank: int
    env: Mapping[str, str]  # the job's container environment (Environment, SMLOCAL_ALGORITHM, ...)


def job_body(environ: Mapping[str, str]) -> dict | None:
    """The CreateTrainingJob body from ``SMLOCAL_JOB_SPEC`` or ``SMLOCAL_JOB_SPEC_FILE``; None if neither is set."""
    text, path = environ.get(JOB_SPEC_ENV, "").strip(), environ.get(JOB_SPEC_FILE_ENV, "").strip()
    if text and path:
        raise CustomerError(f"Both {JOB_SPEC_ENV} and {JOB_SPEC_FILE_ENV} are set: give the job spec once.")
    if not text and not path:
        return None
    where = JOB_SPEC_ENV
    if path:
        where = f"{JOB_SPEC_FILE_ENV} ({path})"
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CustomerError(f"Cannot read the job spec file named by {where}: {exc.strerror}.") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CustomerError(f"The job spec in {where} is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise CustomerError(f"The job spec in {where} must be a JSON object (a CreateTrainingJob body).")
    return body


def engine_spec(body: dict, placement: Placement):
    """The job spec for this engine's nodes: named (every node must agree on the output path), as many
    instances as the engine placed, File-mode channels."""
    from smlocal.runtime.jobspec import parse_job

    if not body.get("TrainingJobName"):
        raise CustomerError("The job spec needs a TrainingJobName: every node writes below "
                            "<S3OutputPath>/<TrainingJobName>/ and must agree on it.")
    spec = parse_job(body)
    nodes = len(placement.hosts)
    if "InstanceCount" in body.get("ResourceConfig", {}) and spec.instance_count != nodes:
        raise CustomerError(f"The job spec's ResourceConfig.InstanceCount={spec.instance_count} contradicts the "
                            f"{nodes} node(s) the {placement.engine} engine placed; make them equal.")
    for ch in spec.channels:
        if ch.is_pipe:
            raise CustomerError(f"Channel '{ch.name}' uses Pipe mode, which needs SageMaker's (or smlocal train's) "
                                "feeder; on this engine use File mode.")
    return spec.with_overrides(instance_count=nodes)


def prepare_engine_job(environ: Mapping[str, str], base: Path, placement: Placement, client=None) -> EngineJob | None:
    """Lay out this node's /opt/ml under ``base`` from the job spec; None when no job spec is given."""
    body = job_body(environ)
    if body is None:
        return None
    from smlocal.runtime import sources
    from smlocal.runtime.layout import materialize
    from smlocal.runtime.plan import LAYOUT, plan_training
    from smlocal.runtime.s3.client import LazyClient

    client = client or LazyClient()
    spec = engine_spec(body, placement)
    rank = placement.hosts.index(placement.current_host)
    if rank == 0:  # the one node that writes the model: a wrong bucket fails before training
        sources.check_output(spec, client)
    objects, is_dir = sources.resolve_channels(spec, client, host_index=rank)
    host = plan_training(spec, spec.job_dir, objects, source_is_dir=is_dir).hosts[rank]
    files = {name: text for name, text in host.files.items() if name != str(LAYOUT.resource_config_file)}
    materialize(replace(host, root=str(base), files=files), mounts_as="symlink")
    log.info(f"Laid out {base} for {placement.current_host} ({rank + 1} of {len(placement.hosts)}, "
             f"{placement.engine}) from the job spec of {spec.job_name}")
    return EngineJob(spec, Path(base), rank, dict(host.env))


def finish_engine_job(job: EngineJob, client=None) -> str | None:
    """The first node packs its model directory as model.tar.gz at the job's output; where it went."""
    if job.rank != 0:
        return None
    from smlocal.runtime import packaging, sources
    from smlocal.runtime.s3.client import LazyClient

    model_dir = Paths(job.base).model_dir
    if not job.spec.s3_output_path:
        target = packaging.package_dirs(Path(job.spec.job_dir) / "output" / MODEL_TAR, [model_dir])
        log.info(f"Wrote {target}")
        return str(target)
    with tempfile.TemporaryDirectory(prefix="smlocal-model-") as staging:
        packaging.package_dirs(Path(staging) / MODEL_TAR, [model_dir])
        uploaded = sources.upload_outputs(job.spec, Path(staging), client or LazyClient(), names=(MODEL_TAR,))
    return uploaded[MODEL_TAR]
