"""Hyperparameter tuning jobs: Create / Describe / List / Stop and ListTrainingJobsForHyperParameterTuningJob.

A create validates the request (``smlocal.tuning.request``: objective, ranges against the algorithm's
schema, limits) before any job starts, stores the record and runs the search (``smlocal.tuning.engine``)
on a thread. The search starts each training job through this API's own CreateTrainingJob, so the jobs
are ordinary training jobs: DescribeTrainingJob, ListTrainingJobs, logs and artifacts all show them, each
with its ``TuningJobArn``. The record keeps the trials; Describe computes the counters and the best job.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from smlocal.api import listing
from smlocal.api.context import Context
from smlocal.api.protocol import arn, failure_reason, in_use, not_found, now, validation
from smlocal.api.training import KIND as TRAINING_KIND
from smlocal.api.training import TrainingJobs

KIND = "tuning-jobs"
RUNNING = ("InProgress", "Stopping")
_INTERNAL = "Local"
_SORT_KEYS = {"Name": lambda s: s["TrainingJobName"], "CreationTime": lambda s: s["CreationTime"],
              "Status": lambda s: s["TrainingJobStatus"],
              "FinalObjectiveMetricValue": lambda s: s.get("FinalHyperParameterTuningJobObjectiveMetric",
                                                           {}).get("Value", float("-inf"))}


class _Launcher:
    """The engine's way to run training jobs: this API's own training job handlers."""

    def __init__(self, training: TrainingJobs, tuning_arn: str):
        self.training, self.tuning_arn = training, tuning_arn

    def start(self, body: dict) -> dict:
        answer = self.training.create(body)
        self.training.ctx.store.update(TRAINING_KIND, body["TrainingJobName"],
                                       lambda r: r.update(TuningJobArn=self.tuning_arn))
        return answer

    def describe(self, name: str) -> dict:
        return self.training.describe({"TrainingJobName": name})

    def log_files(self, name: str) -> list[str]:
        return list(self.training.log_files(name)[0].values())

    def stop(self, name: str) -> None:
        self.training.stop({"TrainingJobName": name})


def _objective(record: dict):
    from smlocal.tuning.request import Objective

    given = record[_INTERNAL]["Objective"]
    return Objective(given["Type"], given["MetricName"], "")


class TuningJobs:
    def __init__(self, ctx: Context, training: TrainingJobs, echo: Callable[[str], None] | None = None):
        """``echo``: also hand each progress line to this (the CLI prints them)."""
        self.ctx, self.training, self.echo = ctx, training, echo
        self.tuners: dict = {}

    # ------------------------------------------------------------------------------------ create
    def create(self, body: dict) -> dict:
        from smlocal.errors import CustomerError
        from smlocal.tuning.engine import Tuner
        from smlocal.tuning.request import parse_request
        from smlocal.tuning.search import optuna_module
        from smlocal.tuning.warmstart import earlier_results

        name = body["HyperParameterTuningJobName"]
        if self.ctx.store.get(KIND, name) is not None:
            raise self._exists(name)
        try:
            optuna_module()  # missing: say how to install it, before anything is stored
            request = parse_request(body)
            earlier = earlier_results(request, [self.ctx.store.get(KIND, p) for p in request.parents])
        except CustomerError as exc:
            raise validation(str(exc)) from None
        created = now()
        tuning_arn = arn("sagemaker", self.ctx.region, "hyper-parameter-tuning-job", name)
        definition_name = request.definition.get("DefinitionName")
        record = {**{k: v for k, v in body.items() if k != "Tags"}, "HyperParameterTuningJobArn": tuning_arn,
                  "HyperParameterTuningJobStatus": "InProgress", "CreationTime": created,
                  "LastModifiedTime": created,
                  _INTERNAL: {"Objective": {"Type": request.objective.type, "MetricName": request.objective.metric},
                              "DefinitionName": definition_name, "Trials": [], "Notes": list(request.notes)}}
        self.ctx.store.create(KIND, name, record, lambda: self._exists(name))
        tuner = Tuner(request, _Launcher(self.training, tuning_arn), lambda trials: self._publish(name, trials),
                      lambda line: self._progress(name, line), earlier)
        self.tuners[name] = tuner
        self.ctx.spawn(self._run, name, tuner, name=f"tuning-{name}")
        return {"HyperParameterTuningJobArn": tuning_arn}

    def _exists(self, name: str):
        return in_use(f"A hyperparameter tuning job named {name!r} already exists.")

    def progress_file(self, name: str) -> Path:
        return self.ctx.store.work_dir(KIND) / f"{name}.progress.log"

    def _progress(self, name: str, line: str) -> None:
        with open(self.progress_file(name), "a", encoding="utf-8") as f:
            f.write(line + "\n")
        if self.echo is not None:
            self.echo(line)

    def _publish(self, name: str, trials: list[dict]) -> None:
        copied = json.loads(json.dumps(trials))
        self.ctx.store.update(KIND, name, lambda r: (r[_INTERNAL].__setitem__("Trials", copied),
                                                    r.update(LastModifiedTime=now())))

    def _run(self, name: str, tuner) -> None:
        reason = None
        try:
            status = tuner.run()
            if status == "Failed":
                first = next((t.get("FailureReason") for t in tuner.trials if t.get("FailureReason")), "")
                reason = f"All training jobs failed. The first: {first}"[:1024]
        except Exception as exc:  # noqa: BLE001 - the search itself broke: the tuning job fails, the server stays
            status, reason = "Failed", failure_reason(exc)

        def finish(record: dict) -> None:
            end = now()
            record.update(HyperParameterTuningJobStatus=status, HyperParameterTuningEndTime=end, LastModifiedTime=end)
            record[_INTERNAL]["Trials"] = json.loads(json.dumps(tuner.trials))
            record[_INTERNAL]["WhyDone"] = tuner.why_done
            record[_INTERNAL]["NotImproving"] = tuner.not_improving
            if reason:
                record["FailureReason"] = reason
        self.ctx.store.update(KIND, name, finish)
        if tuner.why_done:
            self._progress(name, f"tuning job {name}: no more jobs started: {tuner.why_done}")
        self.tuners.pop(name, None)

    # ---------------------------------------------------------------------------------- describe
    def get(self, name: str) -> dict:
        return self.ctx.store.require(KIND, name, lambda: not_found(f"Amazon SageMaker can't find a tuning job "
                                                                    f"with name {name}"))

    def _summaries(self, record: dict) -> list[dict]:
        from smlocal.tuning.summary import job_summary

        local = record[_INTERNAL]
        return [job_summary(t, _objective(record), record["HyperParameterTuningJobName"], local["DefinitionName"])
                for t in local["Trials"]]

    def describe(self, body: dict) -> dict:
        from smlocal.tuning.summary import best_trial, job_summary, status_counters

        record = self.get(body["HyperParameterTuningJobName"])
        local = record[_INTERNAL]
        answer = {k: v for k, v in record.items() if k != _INTERNAL}
        answer.update(status_counters(local["Trials"]))
        best = best_trial(local["Trials"], _objective(record))
        if best is not None:
            answer["BestTrainingJob"] = job_summary(best, _objective(record), record["HyperParameterTuningJobName"],
                                                    local["DefinitionName"])
        answer["TuningJobCompletionDetails"] = {"NumberOfTrainingJobsObjectiveNotImproving":
                                                local.get("NotImproving", 0)}
        end = record.get("HyperParameterTuningEndTime") or now()
        answer["ConsumedResources"] = {"RuntimeInSeconds": int(end - record["CreationTime"])}
        return answer

    def list(self, body: dict) -> dict:
        from smlocal.tuning.summary import status_counters

        def summary(r):
            out = listing.pick(r, "HyperParameterTuningJobName", "HyperParameterTuningJobArn",
                               "HyperParameterTuningJobStatus", "CreationTime", "HyperParameterTuningEndTime",
                               "LastModifiedTime")
            config = r["HyperParameterTuningJobConfig"]
            out.update(Strategy=config["Strategy"], ResourceLimits=config["ResourceLimits"],
                       **status_counters(r[_INTERNAL]["Trials"]))
            return out
        return listing.page(self.ctx.store.all(KIND), body, name_key="HyperParameterTuningJobName",
                            status_key="HyperParameterTuningJobStatus", summary=summary,
                            result_key="HyperParameterTuningJobSummaries")

    def list_training_jobs(self, body: dict) -> dict:
        """ListTrainingJobsForHyperParameterTuningJob: StatusEquals, SortBy, SortOrder, MaxResults, NextToken."""
        summaries = self._summaries(self.get(body["HyperParameterTuningJobName"]))
        if "StatusEquals" in body:
            summaries = [s for s in summaries if s["TrainingJobStatus"] == body["StatusEquals"]]
        sort_by = body.get("SortBy", "CreationTime")
        if sort_by == "FinalObjectiveMetricValue":  # jobs without an objective are left out, as on the service
            summaries = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
        summaries.sort(key=_SORT_KEYS.get(sort_by, _SORT_KEYS["CreationTime"]),
                       reverse=body.get("SortOrder", "Descending") == "Descending")
        try:
            start = int(body.get("NextToken") or 0)
        except ValueError:
            raise validation(f"Invalid pagination token {body['NextToken']!r}.") from None
        size = body.get("MaxResults", listing.DEFAULT_MAX_RESULTS)
        answer: dict = {"TrainingJobSummaries": summaries[start:start + size]}
        if start + size < len(summaries):
            answer["NextToken"] = str(start + size)
        return answer

    def stop(self, body: dict) -> dict:
        name = body["HyperParameterTuningJobName"]
        record = self.get(name)
        if record["HyperParameterTuningJobStatus"] not in RUNNING:
            raise validation(f"The request was rejected because the tuning job is in status "
                             f"{record['HyperParameterTuningJobStatus']}.")
        self.ctx.store.update(KIND, name, lambda r: r.update(HyperParameterTuningJobStatus="Stopping",
                                                             LastModifiedTime=now()))
        tuner = self.tuners.get(name)
        if tuner is not None:
            tuner.stop_requested.set()
        return {}

    def resume(self) -> None:
        """After a restart: a search that was running when the server stopped cannot go on."""
        def interrupted(record: dict) -> None:
            stopping = record["HyperParameterTuningJobStatus"] == "Stopping"
            end = now()
            record.update(HyperParameterTuningJobStatus="Stopped" if stopping else "Failed",
                          HyperParameterTuningEndTime=end, LastModifiedTime=end)
            if not stopping:
                record["FailureReason"] = "InternalServerError: the smlocal api server stopped while the search ran."
        self.ctx.store.update_each(KIND, "HyperParameterTuningJobStatus", RUNNING, interrupted)
