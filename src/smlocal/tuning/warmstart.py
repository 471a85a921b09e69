"""Warm start (``IdenticalDataAndAlgorithm``): the results of earlier local tuning jobs, as Optuna trials.

A parent must have ended, tuned the same algorithm on the same input data with the same objective; its
completed jobs whose hyperparameters fall inside this job's ranges seed the new study, so the sampler
starts from what is known (Optuna's ``study.add_trial``). TransferLearning, where data or algorithm
change, does not fit that model and is refused with a clear error.
"""
from __future__ import annotations

from smlocal.tuning.ranges import range_error
from smlocal.tuning.request import TuningRequest, builtin_algorithm

PARENTS = "WarmStartConfig.ParentHyperParameterTuningJobs"


def _definition(record: dict) -> dict:
    return record.get("TrainingJobDefinition") or (record.get("TrainingJobDefinitions") or [{}])[0]


def _same(request: TuningRequest, parent: dict, index: int) -> None:
    where = f"{PARENTS}[{index}]"
    name = parent["HyperParameterTuningJobName"]
    if parent["HyperParameterTuningJobStatus"] in ("InProgress", "Stopping"):
        raise range_error(where, f"the parent tuning job {name!r} is still running.")
    theirs = _definition(parent)
    if builtin_algorithm(theirs) != request.algorithm or (
            request.algorithm is None and (theirs.get("AlgorithmSpecification") or {}).get("TrainingImage")
            != (request.definition.get("AlgorithmSpecification") or {}).get("TrainingImage")):
        raise range_error(where, f"the parent tuning job {name!r} ran another algorithm; "
                                 "IdenticalDataAndAlgorithm needs the same one.")
    if theirs.get("InputDataConfig") != request.definition.get("InputDataConfig"):
        raise range_error(where, f"the parent tuning job {name!r} used other input data; "
                                 "IdenticalDataAndAlgorithm needs the same InputDataConfig.")
    metric = parent.get("Local", {}).get("Objective", {}).get("MetricName")
    if metric != request.objective.metric:
        raise range_error(where, f"the parent tuning job {name!r} optimized {metric!r}, not "
                                 f"{request.objective.metric!r}.")


def earlier_results(request: TuningRequest, parents: list[dict | None]) -> list[tuple[dict, float]]:
    """(params, objective) of every usable job of the parents, in the parents' order."""
    results = []
    for index, (name, parent) in enumerate(zip(request.parents, parents, strict=True)):
        if parent is None:
            raise range_error(f"{PARENTS}[{index}].HyperParameterTuningJobName",
                              f"there is no tuning job named {name!r}.")
        _same(request, parent, index)
        for trial in parent.get("Local", {}).get("Trials", []):
            if trial["TrainingJobStatus"] != "Completed" or trial.get("Value") is None:
                continue
            params = {r.name: r.sampled(trial["TunedHyperParameters"].get(r.name, "")) for r in request.ranges}
            if all(v is not None for v in params.values()):
                results.append((params, trial["Value"]))
    return results
