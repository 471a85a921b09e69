"""The tuning loop: ask Optuna for hyperparameters, run each as a training job, at most MaxParallel at once.

Each job is an ordinary training job started through a ``Launcher`` (the API's CreateTrainingJob). While
it runs, its log files are followed for the objective's values; each new value is reported to the trial
as one step, so Hyperband and the median rule can stop it (StopTrainingJob). When it ends, its final
objective (the last value) is told to the study. A job that fails counts as failed and the search goes
on. The loop ends after MaxNumberOfTrainingJobs, when the target objective is reached, the best has not
improved for the given number of jobs, MaxRuntimeInSeconds has passed, or Stop is asked for.
"""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Protocol

from smlocal.tuning import search
from smlocal.tuning.metrics import LogFollower
from smlocal.tuning.request import TuningRequest, training_job_body
from smlocal.tuning.summary import best_trial, progress_line

POLL_S = 0.25
TERMINAL = ("Completed", "Failed", "Stopped")


class Launcher(Protocol):
    def start(self, body: dict) -> dict: ...  # the CreateTrainingJob answer
    def describe(self, name: str) -> dict: ...  # the DescribeTrainingJob answer
    def log_files(self, name: str) -> list[str]: ...
    def stop(self, name: str) -> None: ...


@dataclass
class _Running:
    trial: object  # optuna.trial.Trial
    entry: dict
    follower: LogFollower
    pruned: bool = False
    stop_sent: bool = False


def job_name(tuning_name: str, number: int) -> str:
    """``<tuning job>-<number, 3 digits>-<8 hex>``, as the service names a tuning job's training jobs."""
    return f"{tuning_name}-{number:03d}-{uuid.uuid4().hex[:8]}"


class Tuner:
    def __init__(self, request: TuningRequest, launcher: Launcher, publish: Callable[..., None],
                 progress: Callable[[str], None], earlier: list[tuple[dict, float]] = ()):
        """``publish(trials, **fields)`` stores the state after every change; ``progress`` gets one line
        per finished job; ``earlier``: (params, objective) of parent jobs (warm start)."""
        self.request, self.launcher, self.publish, self.progress = request, launcher, publish, progress
        self.earlier = list(earlier)
        self.trials: list[dict] = []
        self.stop_requested = threading.Event()
        self.why_done: str | None = None  # what ended the launching of new jobs early
        self.not_improving = 0

    # ------------------------------------------------------------------------------------- the loop
    def run(self) -> str:
        """Run the search to its end; returns the final status (Completed | Stopped | Failed)."""
        import re

        study = search.create_study(self.request, self.earlier)
        self.regex = re.compile(self.request.objective.regex)
        limit = self.request.max_runtime
        deadline = time.monotonic() + limit if limit else None
        running: list[_Running] = []
        while True:
            if self.stop_requested.is_set() or (deadline is not None and time.monotonic() > deadline):
                if deadline is not None and not self.stop_requested.is_set() and self.why_done is None:
                    self.why_done = f"MaxRuntimeInSeconds={limit} was reached"
                for job in running:
                    self._stop(job)
            elif self.why_done is None:
                while len(running) < self.request.max_parallel and len(self.trials) < self.request.max_jobs:
                    job = self._launch(study)
                    if job is not None:
                        running.append(job)
            for job in list(running):
                if self._poll(study, job):
                    running.remove(job)
            if not running and (self.stop_requested.is_set() or self.why_done is not None
                                or len(self.trials) >= self.request.max_jobs):
                break
            time.sleep(POLL_S)
        return self._final_status()

    def _final_status(self) -> str:
        if self.stop_requested.is_set():
            return "Stopped"
        if self.trials and all(t["TrainingJobStatus"] == "Failed" for t in self.trials):
            return "Failed"
        return "Completed"

    # ------------------------------------------------------------------------------------- one job
    def _launch(self, study) -> _Running | None:
        trial = study.ask(search.distributions(self.request))
        tuned = {r.name: r.value(trial.params[r.name]) for r in self.request.ranges}
        number = len(self.trials) + 1
        name = job_name(self.request.name, number)
        entry = {"Number": number, "TrainingJobName": name, "TrainingJobArn": "", "TunedHyperParameters": tuned,
                 "TrainingJobStatus": "InProgress", "ObjectiveStatus": "Pending", "Value": None,
                 "CreationTime": round(time.time(), 3), "Intermediate": []}
        self.trials.append(entry)
        try:
            answer = self.launcher.start(training_job_body(self.request, name, tuned))
            entry["TrainingJobArn"] = answer.get("TrainingJobArn", "")
        except Exception as exc:  # noqa: BLE001 - a job that cannot start is a failed job; the search goes on
            from smlocal.api.protocol import ApiError

            reason = exc.message if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
            entry.update(TrainingJobStatus="Failed", ObjectiveStatus="Failed", FailureReason=reason[:1024])
            self._tell(study, trial, entry, None)
            return None
        self.publish(self.trials)
        return _Running(trial, entry, LogFollower(self.regex))

    def _poll(self, study, job: _Running) -> bool:
        """Follow one job; True once it has ended (and been told to the study)."""
        name = job.entry["TrainingJobName"]
        answer = self.launcher.describe(name)
        ended = answer["TrainingJobStatus"] in TERMINAL
        new = job.follower.read(self.launcher.log_files(name), flush=ended)
        if new and not job.pruned and not ended:
            values = job.follower.values
            for step in range(len(values) - new, len(values)):
                job.trial.report(values[step], step + 1)
            job.entry["Intermediate"] = list(values)
            if job.trial.should_prune():
                job.pruned = True
                self._stop(job)
        if not ended:
            return False
        job.entry["Intermediate"] = list(job.follower.values)
        self._finish(study, job, answer)
        return True

    def _stop(self, job: _Running) -> None:
        if not job.stop_sent:
            job.stop_sent = True
            try:
                self.launcher.stop(job.entry["TrainingJobName"])
            except Exception:  # noqa: BLE001 - it ended meanwhile
                pass

    def _finish(self, study, job: _Running, answer: dict) -> None:
        entry, value = job.entry, job.follower.final
        status = answer["TrainingJobStatus"]
        entry.update(TrainingJobStatus=status, TrainingStartTime=answer.get("TrainingStartTime"),
                     TrainingEndTime=answer.get("TrainingEndTime"))
        if answer.get("FailureReason"):
            entry["FailureReason"] = answer["FailureReason"]
        if job.pruned and value is not None:
            entry.update(EarlyStopped=True, Value=value, ObjectiveStatus="Succeeded")
            self._tell(study, job.trial, entry, None, pruned=True)
        elif status == "Completed" and value is not None:
            entry.update(Value=value, ObjectiveStatus="Succeeded")
            self._tell(study, job.trial, entry, value)
        else:
            if status == "Completed":
                entry["FailureReason"] = (f"The objective metric {self.request.objective.metric} was not found in "
                                          "the training job's logs.")
            entry.update(ObjectiveStatus="Failed", Value=value if status == "Stopped" else None)
            self._tell(study, job.trial, entry, None)

    def _tell(self, study, trial, entry: dict, value: float | None, pruned: bool = False) -> None:
        from optuna.trial import TrialState

        if pruned:
            study.tell(trial, state=TrialState.PRUNED)
        elif value is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, value)
        best = best_trial(self.trials, self.request.objective)
        self._check_completion(entry, best)
        self.publish(self.trials)
        self.progress(progress_line(entry, self.request.max_jobs, self.request.objective, best))

    def _check_completion(self, entry: dict, best: dict | None) -> None:
        """TuningJobCompletionCriteria: the target objective, or no improvement for N jobs."""
        request = self.request
        if entry.get("Value") is None or entry["TrainingJobStatus"] != "Completed":
            return
        self.not_improving = 0 if best is entry else self.not_improving + 1  # ties keep the earlier job
        if request.target is not None and best is not None and not request.objective.better(request.target, best["Value"]):
            self.why_done = self.why_done or f"the objective reached TargetObjectiveMetricValue={request.target:g}"
        if request.not_improving and self.not_improving >= request.not_improving:
            self.why_done = self.why_done or f"the best objective did not improve for {self.not_improving} jobs"
