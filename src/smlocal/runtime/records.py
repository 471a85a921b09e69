"""Training job records: ``<output>/<job>/training-job.json``, what DescribeTrainingJob would answer.

The job runner (``jobs``) writes the record as the job goes (InProgress, then Completed, Failed or
Stopped); ``smlocal describe`` reads it back and prints its summary lines.
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

from smlocal.artifacts.files import atomic_write_bytes
from smlocal.errors import CustomerError

if TYPE_CHECKING:
    from smlocal.runtime.jobspec import JobSpec
    from smlocal.runtime.plan import TrainingPlan

RECORD_NAME = "training-job.json"


def now() -> str:
    """The record's timestamps: UTC, ISO 8601 with milliseconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def write_record(path: Path, record: dict) -> None:
    atomic_write_bytes(path, (json.dumps(record, indent=2, sort_keys=False) + "\n").encode())


def read_record(target: str | Path, output_root: str | Path | None = None) -> dict:
    """A job record by job directory, record file, or job name under ``output_root``."""
    candidates = [Path(target)]
    if output_root is not None:
        candidates.append(Path(output_root) / str(target))
    for cand in candidates:
        path = cand if cand.is_file() else cand / RECORD_NAME
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise CustomerError(f"Job record {path} is not valid JSON ({exc}).") from None
    where = " or ".join(str(c) for c in candidates)
    raise CustomerError(f"No training job found at {where}: expected a job directory holding {RECORD_NAME} "
                        "(<output>/<job-name>) or a job name with --output.")


def base_record(spec: JobSpec, plan: TrainingPlan, backend: str) -> dict:
    """The record of a job about to start: its request, as CreateTrainingJob would echo it, InProgress."""
    return {
        "TrainingJobName": spec.job_name,
        "TrainingJobArn": f"arn:aws:sagemaker:local:000000000000:training-job/{spec.job_name}",
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Starting",
        "AlgorithmSpecification": {
            **({"TrainingImage": spec.image} if spec.image else {}),
            **({"AlgorithmName": spec.algorithm} if spec.algorithm else {}),
            "TrainingInputMode": spec.input_mode,
        },
        "HyperParameters": dict(spec.hyperparameters),
        "InputDataConfig": [
            {"ChannelName": c.name, "DataSource": {"S3DataSource": {
                "S3DataType": c.data_type, "S3Uri": c.source, "S3DataDistributionType": c.distribution}},
             **({"ContentType": c.content_type} if c.content_type else {}),
             "CompressionType": c.compression, "RecordWrapperType": c.record_wrapper, "InputMode": c.input_mode,
             **({"ShuffleConfig": {"Seed": c.shuffle_seed}} if c.shuffle_seed is not None else {})}
            for c in spec.channels
        ],
        "OutputDataConfig": {"S3OutputPath": spec.s3_output_path or spec.output_path},
        "ResourceConfig": {"InstanceType": spec.instance_type, "InstanceCount": spec.instance_count},
        "StoppingCondition": {"MaxRuntimeInSeconds": spec.max_runtime} if spec.max_runtime else {},
        "Environment": dict(spec.environment),
        "CreationTime": now(),
        "Backend": backend,
        "LogFiles": {h.host: str(plan.logs_dir / f"{h.host}.log") for h in plan.hosts},
    }


def summary_lines(record: dict) -> list[str]:
    """Human lines for ``smlocal describe`` and the end of ``smlocal train``."""
    lines = [f"TrainingJobName: {record.get('TrainingJobName')}",
             f"TrainingJobStatus: {record.get('TrainingJobStatus')}",
             f"SecondaryStatus: {record.get('SecondaryStatus')}"]
    if "ExitCode" in record:
        lines.append(f"ExitCode: {record['ExitCode']}")
    if record.get("FailureReason"):
        lines.append(f"FailureReason: {record['FailureReason']}")
    if "ModelArtifacts" in record:
        lines.append(f"ModelArtifacts: {record['ModelArtifacts']['S3ModelArtifacts']}")
    local_model = (record.get("LocalArtifacts") or {}).get("model")
    if local_model and local_model != record.get("ModelArtifacts", {}).get("S3ModelArtifacts"):
        lines.append(f"ModelArtifacts (local copy): {local_model}")
    if "TrainingTimeInSeconds" in record:
        lines.append(f"TrainingTimeInSeconds: {record['TrainingTimeInSeconds']}")
    for host, path in (record.get("LogFiles") or {}).items():
        lines.append(f"Log ({host}): {path}")
    if record.get("WorkDirectory"):
        lines.append(f"WorkDirectory: {record['WorkDirectory']}")
    return lines
