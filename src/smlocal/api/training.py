"""Training jobs: CreateTrainingJob / Describe / List / Stop over the runtime's ``run_training``.

A create validates the request (botocore's model, then the runtime's ``parse_job``), stores the record
and runs the job on a thread. The record answers Describe: the request as given, the status, the
secondary status and its transitions (read from the runtime's own job record while it runs), and at
the end the runtime's outcome: FailureReason, ModelArtifacts and FinalMetricDataList from the logs.
"""
from __future__ import annotations

import datetime as _dt
import json
import threading
from pathlib import Path

from smlocal.api import images, listing, metrics
from smlocal.api.context import Context
from smlocal.api.protocol import ApiError, arn, failure_reason, in_use, now, validation

KIND = "training-jobs"
TERMINAL = ("Completed", "Failed", "Stopped")
_INTERNAL = "Local"  # record key for what only this server needs (job directory); never answered


def epoch(iso: str | None) -> float | None:
    return _dt.datetime.fromisoformat(iso).timestamp() if iso else None


class TrainingJobs:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.stops: dict[str, threading.Event] = {}  # running job -> its stop event (StopTrainingJob)

    # ------------------------------------------------------------------------------------ create
    @staticmethod
    def _local_body(body: dict) -> dict:
        """The request as the runtime takes it: the SDK's framework image dropped (script mode on
        smlocal's container); built-in images, s3:// channels and code are the runtime's to read."""
        local = {k: v for k, v in body.items() if k != "Tags"}
        local["AlgorithmSpecification"] = images.local_algorithm_spec(body["AlgorithmSpecification"])
        return local

    def _check_quota(self, body: dict) -> None:
        """ResourceLimitExceeded, as the service's per-instance-type training quota answers: this
        machine's limit is ``max_training_instances`` instances of running jobs per instance type."""
        resources = body["ResourceConfig"]
        kind, count = resources.get("InstanceType", "ml.m5.large"), resources.get("InstanceCount", 1)
        used = sum(r["ResourceConfig"].get("InstanceCount", 1) for r in self.ctx.store.all(KIND)
                   if r["TrainingJobStatus"] in ("InProgress", "Stopping")
                   and r["ResourceConfig"].get("InstanceType") == kind)
        limit = self.ctx.max_training_instances
        if used + count > limit:
            raise ApiError("ResourceLimitExceeded", f"The account-level service limit '{kind} for training job "
                                                    f"usage' is {limit} Instances, with current utilization of "
                                                    f"{used} Instances and a request delta of {count} Instances. "
                                                    "Locally the limit is smlocal api's --max-training-instances.")

    def create(self, body: dict) -> dict:
        from smlocal.errors import SmlocalError
        from smlocal.runtime.jobspec import parse_job

        name = body["TrainingJobName"]
        work = self.ctx.store.work_dir(KIND)
        if self.ctx.store.get(KIND, name) is not None:
            raise self._exists(name)
        try:
            spec = parse_job(self._local_body(body), base=work, local_output=str(work))
        except SmlocalError as exc:
            raise validation(str(exc)) from None
        created = now()
        record = {**body, "TrainingJobName": name, "TrainingJobArn": arn("sagemaker", self.ctx.region,
                                                                          "training-job", name),
                  "TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting",
                  "SecondaryStatusTransitions": [{"Status": "Starting", "StartTime": created,
                                                  "StatusMessage": "Preparing the instances for training"}],
                  "CreationTime": created, "LastModifiedTime": created,
                  _INTERNAL: {"JobDirectory": str(spec.job_dir)}}
        record.pop("Tags", None)
        with self.ctx.store.lock:  # the quota counts what is stored: two clients at once cannot both pass
            self._check_quota(body)
            self.ctx.store.create(KIND, name, record, lambda: self._exists(name))
            self.stops[name] = threading.Event()
        self.ctx.spawn(self._run, name, spec, name=f"training-{name}")
        return {"TrainingJobArn": record["TrainingJobArn"]}

    def _exists(self, name: str) -> ApiError:
        return in_use(f"Training job names must be unique within an AWS account and region, and a training "
                      f"job with this name already exists ({arn('sagemaker', self.ctx.region, 'training-job', name)})")

    def _run(self, name: str, spec) -> None:
        from smlocal.runtime.jobs import run_training
        from smlocal.runtime.progress import Display

        result, error, stop = None, None, self.stops[name]
        try:
            backend = self.ctx.choose_backend(spec.image, spec.algorithm)
            # the runtime's progress messages go to a file beside the job, not the server's console
            spec.job_dir.parent.mkdir(parents=True, exist_ok=True)  # a local S3OutputPath may not exist yet
            with open(spec.job_dir.with_name(name + ".messages.log"), "a", encoding="utf-8") as messages:
                result = run_training(spec, backend, display=Display(live=False, stream=messages),
                                      s3_client=self.ctx.s3, stop=stop, cache_dir=self.ctx.cache_dir)
        except Exception as exc:  # noqa: BLE001 - any failure to run is the job's FailureReason
            error = failure_reason(exc)
        self.ctx.store.update(KIND, name, lambda r: self._finish(r, result, error, stop.is_set()))
        self.stops.pop(name, None)

    def _finish(self, record: dict, result, error: str | None, stopped: bool) -> None:
        end = now()
        runtime = result.record if result is not None else self._runtime_record(record) or {}
        if stopped:
            status, secondary = "Stopped", "Stopped"
        elif result is None:
            status, secondary = "Failed", "Failed"
        else:
            status, secondary = result.status, result.secondary_status
        start = epoch(runtime.get("TrainingStartTime")) or record["CreationTime"]
        transitions = [{"Status": "Starting", "StartTime": record["CreationTime"], "EndTime": start,
                        "StatusMessage": "Preparing the instances for training"}]
        if runtime.get("TrainingStartTime"):
            transitions.append({"Status": "Training", "StartTime": start, "EndTime": end,
                                "StatusMessage": "Training image download completed. Training in progress."})
        transitions.append({"Status": secondary, "StartTime": end, "StatusMessage": _final_message(status, secondary)})
        record.update({"TrainingJobStatus": status, "SecondaryStatus": secondary, "TrainingStartTime": start,
                       "TrainingEndTime": end, "LastModifiedTime": end, "SecondaryStatusTransitions": transitions,
                       "TrainingTimeInSeconds": int(end - start), "BillableTimeInSeconds": int(end - start)})
        reason = error or (result.failure_reason if result is not None else None)
        if reason and status == "Failed":
            record["FailureReason"] = reason
        artifacts = (runtime.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        if artifacts and status != "Failed":
            record["ModelArtifacts"] = {"S3ModelArtifacts": artifacts}
        logs = (runtime.get("LogFiles") or {}).values()
        final = metrics.metrics_from_logs(logs, end, _builtin_definitions(record))
        if final:
            record["FinalMetricDataList"] = final

    # ---------------------------------------------------------------------------------- describe
    def _runtime_record(self, record: dict) -> dict | None:
        from smlocal.runtime.records import RECORD_NAME

        path = Path(record.get(_INTERNAL, {}).get("JobDirectory", "")) / RECORD_NAME
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def get(self, name: str) -> dict:
        # the service answers an unknown training job so, whatever its model's ResourceNotFound says
        # (github.com/aws/aws-sdk/issues/165); the SDK compares this very message
        return self.ctx.store.require(KIND, name, lambda: validation("Requested resource not found."))

    def log_files(self, name: str) -> tuple[dict, float]:
        """(host -> log file, the streams' creation time) of a job that has started."""
        record = self.get(name)
        runtime = self._runtime_record(record) or {}
        return runtime.get("LogFiles") or {}, record["CreationTime"]

    def describe(self, body: dict) -> dict:
        record = self.get(body["TrainingJobName"])
        if record["TrainingJobStatus"] in ("InProgress", "Stopping"):
            runtime = self._runtime_record(record) or {}
            if runtime.get("SecondaryStatus") == "Training" and record["SecondaryStatus"] == "Starting":
                start = epoch(runtime.get("TrainingStartTime")) or now()
                record["SecondaryStatusTransitions"][0]["EndTime"] = start
                record["SecondaryStatusTransitions"].append(
                    {"Status": "Training", "StartTime": start,
                     "StatusMessage": "Training image download completed. Training in progress."})
                record["SecondaryStatus"] = "Training"
                record["TrainingStartTime"] = start
        return {k: v for k, v in record.items() if k != _INTERNAL}

    def list(self, body: dict) -> dict:
        def summary(r):
            return listing.pick(r, "TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingEndTime",
                                "LastModifiedTime", "TrainingJobStatus", "SecondaryStatus")
        return listing.page(self.ctx.store.all(KIND), body, name_key="TrainingJobName",
                            status_key="TrainingJobStatus", summary=summary, result_key="TrainingJobSummaries",
                            default_order="Ascending")

    def stop(self, body: dict) -> dict:
        name = body["TrainingJobName"]
        record = self.get(name)
        if record["TrainingJobStatus"] in TERMINAL:
            raise validation(f"The request was rejected because the training job is in status "
                             f"{record['TrainingJobStatus']}.")
        self.ctx.store.update(KIND, name, lambda r: r.update(TrainingJobStatus="Stopping",
                                                             SecondaryStatus="Stopping", LastModifiedTime=now()))
        stop = self.stops.get(name)
        if stop is not None:
            stop.set()  # the runtime stops the hosts (SIGTERM, then SIGKILL after the grace) and reports Stopped
        return {}

    def resume(self) -> None:
        """After a restart: a job that was running when the server stopped cannot be resumed."""
        self.ctx.store.update_each(KIND, "TrainingJobStatus", ("InProgress", "Stopping"), self._interrupted)

    @staticmethod
    def _interrupted(record: dict) -> None:
        end = now()
        stopping = record["TrainingJobStatus"] == "Stopping"
        record.update({"TrainingJobStatus": "Stopped" if stopping else "Failed",
                       "SecondaryStatus": "Stopped" if stopping else "Failed",
                       "TrainingEndTime": end, "LastModifiedTime": end})
        if not stopping:
            record["FailureReason"] = "InternalServerError: the smlocal api server stopped while the job ran."


def _final_message(status: str, secondary: str) -> str:
    return {"Completed": "Training job completed", "Stopped": "Training job stopped",
            "MaxRuntimeExceeded": "Training job reached the stopping condition MaxRuntimeInSeconds"}.get(
        secondary, "Training job failed" if status == "Failed" else secondary)


def _builtin_definitions(record: dict) -> dict[str, str]:
    """The metric definitions SageMaker gives a built-in algorithm's job (none for other images)."""
    from smlocal.tuning.metrics import BUILTIN_METRICS
    from smlocal.tuning.request import builtin_algorithm

    return BUILTIN_METRICS.get(builtin_algorithm(record) or "", {})
