"""What Describe and List answer about a tuning job, computed from its trials (pure functions).

A trial entry is the engine's record of one training job: ``Number``, ``TrainingJobName``,
``TunedHyperParameters``, ``TrainingJobStatus``, ``ObjectiveStatus`` (Pending | Succeeded | Failed), ``Value``
(the objective, or None), ``EarlyStopped``, the times and any ``FailureReason``.
"""
from __future__ import annotations

from typing import Iterable

from smlocal.tuning.request import Objective

RUNNING = ("InProgress", "Stopping")


def status_counters(trials: Iterable[dict]) -> dict:
    jobs = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    objective = {"Succeeded": 0, "Pending": 0, "Failed": 0}
    for t in trials:
        status = t["TrainingJobStatus"]
        key = "InProgress" if status in RUNNING else "NonRetryableError" if status == "Failed" else status
        jobs[key] += 1
        objective[t["ObjectiveStatus"]] += 1
    return {"TrainingJobStatusCounters": jobs, "ObjectiveStatusCounters": objective}


def best_trial(trials: Iterable[dict], objective: Objective) -> dict | None:
    """The completed job with the best objective (an early-stopped job's model is not a finished one)."""
    best = None
    for t in trials:
        if t["TrainingJobStatus"] == "Completed" and t.get("Value") is not None:
            if best is None or objective.better(t["Value"], best["Value"]):
                best = t
    return best


def job_summary(trial: dict, objective: Objective, tuning_name: str, definition_name: str | None) -> dict:
    """A HyperParameterTrainingJobSummary."""
    out = {"TrainingJobName": trial["TrainingJobName"], "TrainingJobArn": trial["TrainingJobArn"],
           "TuningJobName": tuning_name, "CreationTime": trial["CreationTime"],
           "TrainingJobStatus": trial["TrainingJobStatus"], "TunedHyperParameters": trial["TunedHyperParameters"],
           "ObjectiveStatus": trial["ObjectiveStatus"]}
    if definition_name:
        out["TrainingJobDefinitionName"] = definition_name
    for key in ("TrainingStartTime", "TrainingEndTime", "FailureReason"):
        if trial.get(key) is not None:
            out[key] = trial[key]
    if trial.get("Value") is not None:
        out["FinalHyperParameterTuningJobObjectiveMetric"] = {"Type": objective.type, "MetricName": objective.metric,
                                                              "Value": trial["Value"]}
    return out


def _hyperparameters(trial: dict) -> str:
    return " ".join(f"{k}={_short(v)}" for k, v in sorted(trial["TunedHyperParameters"].items()))


def _short(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return value if value.lstrip("-").isdigit() else f"{number:.4g}"


def progress_line(trial: dict, total: int, objective: Objective, best: dict | None) -> str:
    """One line per finished job: number, hyperparameters, objective, best so far."""
    value = trial.get("Value")
    shown = f"{objective.metric}={value:.6g}" if value is not None else f"{objective.metric}=-"
    status = "EarlyStopped" if trial.get("EarlyStopped") else trial["TrainingJobStatus"]
    best_text = f"best {best['Value']:.6g} (job {best['Number']})" if best else "best -"
    return (f"[{trial['Number']:>3}/{total}] {trial['TrainingJobName']} {status:<12} {_hyperparameters(trial)}  "
            f"{shown}  {best_text}")
