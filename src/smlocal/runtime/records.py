"""Training job records: ``<output>/<job>/training-job.json``, what DescribeTrainingJob would answer.

The job runner (``jobs``) writes the record as the job goes (InProgress, then Completed, Failed or
Stopped); ``smlocal describe`` reads it back and prints its summary lines. The record names its runner
(PID, that process's start time, host): a job still InProgress whose runner is gone (``kill -9``, a
crash) is read back as Failed, since nobody is left to finish it. The start time tells a PID reused by
another process from the runner itself.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from smlocal.artifacts.files import atomic_write_bytes
from smlocal.errors import CustomerError

if TYPE_CHECKING:
    from smlocal.runtime.jobspec import JobSpec
    from smlocal.runtime.plan import TrainingPlan

RECORD_NAME = "training-job.json"
_ACTIVE = ("InProgress", "Stopping")


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
                record = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise CustomerError(f"Job record {path} is not valid JSON ({exc}).") from None
            return with_runner_checked(record)
    where = " or ".join(str(c) for c in candidates)
    raise CustomerError(f"No training job found at {where}: expected a job directory holding {RECORD_NAME} "
                        "(<output>/<job-name>) or a job name with --output.")


def _start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot, /proc/<pid>/stat field 22); None if it is not running
    (a zombie counts as gone) or there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()  # after "pid (comm) ": field 3, the state, onwards
    return None if fields[0] in (b"Z", b"X") else int(fields[19])


def runner_identity(pid: int | None = None) -> dict:
    """The record's ``Runner``: who watches the job (this process by default)."""
    pid = pid or os.getpid()
    return {"Pid": pid, "StartTicks": _start_ticks(pid), "Host": socket.gethostname()}


def runner_gone(runner: dict) -> bool:
    """True when the runner is known to be gone; False while it runs or where this machine cannot tell
    (another host's runner, no /proc)."""
    if runner.get("Host") != socket.gethostname():
        return False
    if runner.get("StartTicks") is not None:
        return _start_ticks(int(runner["Pid"])) != runner["StartTicks"]
    if os.name != "posix":
        return False
    try:  # no /proc (macOS): the PID alone, without the guard against reuse
        os.kill(int(runner["Pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


def with_runner_checked(record: dict) -> dict:
    """``record``, or where it is still active but its runner is gone, the Failed record it stands for."""
    runner = record.get("Runner") or {}
    if record.get("TrainingJobStatus") not in _ACTIVE or not runner or not runner_gone(runner):
        return record
    logs = ", ".join((record.get("LogFiles") or {}).values()) or "none"
    reason = (f"The smlocal process that ran this job (PID {runner['Pid']}) ended before the job did: it was "
              "killed (for example with SIGKILL) or crashed, so nobody saw the job to its end. Its hosts may "
              f"still be running; see their logs: {logs}.")
    return {**record, "TrainingJobStatus": "Failed", "SecondaryStatus": "Failed", "FailureReason": reason}


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
        "Runner": runner_identity(),
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
