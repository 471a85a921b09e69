"""A CreateHyperParameterTuningJob body validated into a frozen ``TuningRequest``, before any job starts.

The field shapes are botocore's (the API checks them against the service model first); this module checks
what the service checks beyond shapes, each error naming the field: the objective metric is one the
algorithm reports (the built-ins' own metric names, or the definition's MetricDefinitions for scripts),
every range fits the built-in's hyperparameter schema, no static hyperparameter is also tuned, and
MaxParallelTrainingJobs <= MaxNumberOfTrainingJobs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from smlocal.errors import CustomerError
from smlocal.tuning.metrics import BUILTIN_METRICS, emitted_by
from smlocal.tuning.ranges import Range, check_against_schema, parse_ranges, range_error

STRATEGIES = ("Bayesian", "Random", "Grid", "Hyperband")
EPOCH_KEYS = ("epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs")  # where Hyperband finds MaxResource
TUNING_OBJECTIVE = "_tuning_objective_metric"
MAX_PARENTS = 5
_CONFIG = "HyperParameterTuningJobConfig"
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")


@dataclass(frozen=True)
class Objective:
    type: str  # Minimize | Maximize
    metric: str
    regex: str

    def better(self, a: float, b: float | None) -> bool:
        """Is ``a`` better than ``b`` (None: nothing yet)?"""
        return b is None or (a < b if self.type == "Minimize" else a > b)


@dataclass(frozen=True)
class TuningRequest:
    name: str
    strategy: str
    objective: Objective
    max_jobs: int
    max_parallel: int
    ranges: tuple[Range, ...]
    definition: dict  # the training job definition as given
    static: dict[str, str]
    algorithm: str | None  # a built-in, or None for script mode / another image
    max_runtime: int | None = None
    early_stopping: str = "Off"
    seed: int | None = None
    target: float | None = None
    not_improving: int | None = None  # BestObjectiveNotImproving.MaxNumberOfTrainingJobsNotImproving
    hyperband: tuple[int, int] | None = None  # (MinResource, MaxResource)
    parents: tuple[str, ...] = ()  # warm start: earlier tuning jobs
    notes: tuple[str, ...] = field(default=())


def _definition(body: dict) -> tuple[dict, str]:
    if "TrainingJobDefinition" in body and "TrainingJobDefinitions" in body:
        raise range_error("TrainingJobDefinitions", "give TrainingJobDefinition or TrainingJobDefinitions, not both.")
    if "TrainingJobDefinition" in body:
        return body["TrainingJobDefinition"], "TrainingJobDefinition"
    definitions = body.get("TrainingJobDefinitions")
    if not definitions:
        raise range_error("TrainingJobDefinition", "is required.")
    if len(definitions) > 1:
        raise range_error("TrainingJobDefinitions", "tuning several training job definitions at once is not "
                                                    "supported locally; give one definition per tuning job.")
    return definitions[0], "TrainingJobDefinitions[0]"


def builtin_algorithm(definition: dict) -> str | None:
    from smlocal.algorithms import NAMES, normalize
    from smlocal.runtime.jobspec import algorithm_from_image

    spec = definition.get("AlgorithmSpecification") or {}
    if spec.get("TrainingImage"):
        return algorithm_from_image(spec["TrainingImage"])
    name = normalize(str(spec.get("AlgorithmName", "")).rsplit("/", 1)[-1])
    return name if name in NAMES else None


def _objective(body: dict, definition: dict, where: str, algorithm: str | None, static: dict) -> Objective:
    given = definition.get("TuningObjective") or body[_CONFIG].get("HyperParameterTuningJobObjective")
    path = f"{where}.TuningObjective" if definition.get("TuningObjective") else f"{_CONFIG}.HyperParameterTuningJobObjective"
    if not given:
        raise range_error(path, "is required: the metric to optimize and Minimize or Maximize.")
    kind, metric = given.get("Type"), given.get("MetricName", "")
    if kind not in ("Minimize", "Maximize"):
        raise range_error(f"{path}.Type", f"{kind!r} is not Minimize or Maximize.")
    if algorithm is not None:
        known = BUILTIN_METRICS[algorithm]
        if metric not in known:
            raise range_error(f"{path}.MetricName", f"{metric!r} is not an objective metric of {algorithm}; it "
                                                    f"reports {', '.join(sorted(known))}.")
        why = emitted_by(algorithm, metric, static)
        if why:
            raise range_error(f"{path}.MetricName", why + ".")
        _check_channel(definition, where, metric, f"{path}.MetricName")
        return Objective(kind, metric, known[metric])
    definitions = (definition.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
    regex = next((d.get("Regex") for d in definitions if d.get("Name") == metric), None)
    if regex is None:
        raise range_error(f"{path}.MetricName", f"{metric!r} is not among "
                                                f"{where}.AlgorithmSpecification.MetricDefinitions "
                                                f"({', '.join(d.get('Name', '?') for d in definitions) or 'none'}); "
                                                "define its regex there.")
    try:
        if re.compile(regex).groups < 1:
            raise range_error(f"{where}.AlgorithmSpecification.MetricDefinitions", f"the regex of {metric!r} "
                                                                                  "needs a capture group.")
    except re.error as exc:
        raise range_error(f"{where}.AlgorithmSpecification.MetricDefinitions",
                          f"the regex of {metric!r} is not valid: {exc}.") from None
    return Objective(kind, metric, regex)


def _check_channel(definition: dict, where: str, metric: str, path: str) -> None:
    split = metric.split(":")[0]
    channels = [c.get("ChannelName") for c in definition.get("InputDataConfig") or []]
    if split in ("test", "validation") and split not in channels:
        raise range_error(path, f"{metric!r} is computed on the '{split}' channel, and "
                                f"{where}.InputDataConfig has none (channels: {', '.join(map(str, channels))}).")


def _check_hyperparameters(ranges: tuple[Range, ...], static: dict, algorithm: str | None, where: str) -> None:
    for r in ranges:
        if r.name in static:
            raise range_error(f"{where}.StaticHyperParameters.{r.name}",
                              f"{r.name!r} is tuned by {r.path}; a hyperparameter is either static or tuned.")
    if algorithm is None:
        return
    schema = _schema(algorithm)
    for r in ranges:
        if r.name not in schema.params:
            raise range_error(f"{r.path}.Name", f"{r.name!r} is not a {algorithm} hyperparameter.")
        check_against_schema(r, schema.params[r.name])
    sample = {r.name: r.values[0] if r.kind == "Categorical" else str(int(r.low)) if r.kind == "Integer"
              else repr(r.low) for r in ranges}
    try:
        schema.parse({**static, **sample})
    except CustomerError as exc:
        raise range_error(f"{where}.StaticHyperParameters", str(exc)) from None


def _schema(algorithm: str):
    import importlib

    from smlocal.algorithms import REGISTRY

    return importlib.import_module(REGISTRY[algorithm].module + ".config").SCHEMA


def _limits(config: dict, strategy: str, ranges: tuple[Range, ...]) -> tuple[int, int]:
    limits = config.get("ResourceLimits") or {}
    path = f"{_CONFIG}.ResourceLimits"
    parallel = limits.get("MaxParallelTrainingJobs", 1)
    most = limits.get("MaxNumberOfTrainingJobs")
    if strategy == "Grid":
        if any(r.kind != "Categorical" for r in ranges):
            bad = next(r for r in ranges if r.kind != "Categorical")
            raise range_error(bad.path, "the Grid strategy takes categorical ranges only.")
        size = 1
        for r in ranges:
            size *= len(r.values)
        most = size if most is None else min(most, size)
    if most is None:
        raise range_error(f"{path}.MaxNumberOfTrainingJobs", f"is required for the {strategy} strategy.")
    if most < 1 or parallel < 1:
        raise range_error(path, "MaxNumberOfTrainingJobs and MaxParallelTrainingJobs must be at least 1.")
    if parallel > most:
        raise range_error(f"{path}.MaxParallelTrainingJobs", f"{parallel} is more than MaxNumberOfTrainingJobs "
                                                             f"({most}).")
    return most, parallel


def _hyperband(config: dict, static: dict, early_stopping: str) -> tuple[int, int]:
    path = f"{_CONFIG}.StrategyConfig.HyperbandStrategyConfig"
    given = ((config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig")) or {}
    if early_stopping != "Off":
        raise range_error(f"{_CONFIG}.TrainingJobEarlyStoppingType", "Hyperband stops jobs early itself: set "
                                                                     "TrainingJobEarlyStoppingType to Off.")
    most = given.get("MaxResource")
    if most is None:
        key = next((k for k in EPOCH_KEYS if k in static), None)
        if key is None or not str(static[key]).isdigit():
            raise range_error(f"{path}.MaxResource", "is required: give it, or a static 'epochs' hyperparameter "
                                                     "it can be taken from.")
        most = int(static[key])
    least = given.get("MinResource", 1)
    if not 1 <= least <= most:
        raise range_error(f"{path}.MinResource", f"{least} must be between 1 and MaxResource ({most}).")
    return least, most


def _completion(config: dict) -> tuple[float | None, int | None, list[str]]:
    criteria = config.get("TuningJobCompletionCriteria") or {}
    notes = []
    if (criteria.get("ConvergenceDetected") or {}).get("CompleteOnConvergence") == "Enabled":
        notes.append("TuningJobCompletionCriteria.ConvergenceDetected is not applied locally")
    not_improving = (criteria.get("BestObjectiveNotImproving") or {}).get("MaxNumberOfTrainingJobsNotImproving")
    return criteria.get("TargetObjectiveMetricValue"), not_improving, notes


def _parents(body: dict) -> tuple[str, ...]:
    warm = body.get("WarmStartConfig")
    if not warm:
        return ()
    if warm.get("WarmStartType") != "IdenticalDataAndAlgorithm":
        raise range_error("WarmStartConfig.WarmStartType", f"{warm.get('WarmStartType')!r} is not supported "
                                                           "locally; use IdenticalDataAndAlgorithm (earlier local "
                                                           "tuning jobs with the same data and algorithm).")
    names = [p.get("HyperParameterTuningJobName") for p in warm.get("ParentHyperParameterTuningJobs") or []]
    if not names or len(names) > MAX_PARENTS or not all(names):
        raise range_error("WarmStartConfig.ParentHyperParameterTuningJobs", f"name 1 to {MAX_PARENTS} parent "
                                                                            "tuning jobs.")
    return tuple(names)


def parse_request(body: dict) -> TuningRequest:
    """Validate ``body`` (a CreateHyperParameterTuningJob request); every error names its field."""
    if not _NAME.match(str(body.get("HyperParameterTuningJobName", ""))):
        raise range_error("HyperParameterTuningJobName", f"{body.get('HyperParameterTuningJobName')!r} must be "
                                                         "1-32 letters, digits or '-', starting with a letter or digit.")
    if body.get("Autotune"):
        raise range_error("Autotune", "is not supported locally; give the strategy and ranges explicitly.")
    config = body[_CONFIG]
    strategy = config.get("Strategy")
    if strategy not in STRATEGIES:
        raise range_error(f"{_CONFIG}.Strategy", f"{strategy!r} is not one of {', '.join(STRATEGIES)}.")
    definition, where = _definition(body)
    algorithm = builtin_algorithm(definition)
    static = {k: str(v) for k, v in (definition.get("StaticHyperParameters") or {}).items()}
    ranges_given = definition.get("HyperParameterRanges") or config.get("ParameterRanges")
    ranges_path = f"{where}.HyperParameterRanges" if definition.get("HyperParameterRanges") else \
        f"{_CONFIG}.ParameterRanges"
    ranges = parse_ranges(ranges_given, ranges_path)
    _check_hyperparameters(ranges, static, algorithm, where)
    objective = _objective(body, definition, where, algorithm, static)
    most, parallel = _limits(config, strategy, ranges)
    early_stopping = config.get("TrainingJobEarlyStoppingType", "Off")
    hyperband = _hyperband(config, static, early_stopping) if strategy == "Hyperband" else None
    target, not_improving, notes = _completion(config)
    return TuningRequest(
        name=body["HyperParameterTuningJobName"], strategy=strategy, objective=objective, max_jobs=most,
        max_parallel=parallel, ranges=ranges, definition=definition, static=static, algorithm=algorithm,
        max_runtime=(config.get("ResourceLimits") or {}).get("MaxRuntimeInSeconds"),
        early_stopping=early_stopping, seed=config.get("RandomSeed"), target=target, not_improving=not_improving,
        hyperband=hyperband, parents=_parents(body), notes=tuple(notes))


def training_job_body(request: TuningRequest, name: str, tuned: dict[str, str]) -> dict:
    """The CreateTrainingJob body of one job: the definition with static and tuned hyperparameters, and
    for the built-ins ``_tuning_objective_metric`` as the service passes it (linear learner then trains
    one model)."""
    d = request.definition
    spec = {k: v for k, v in (d.get("AlgorithmSpecification") or {}).items()}
    hps = {**request.static, **tuned}
    if request.algorithm is not None:
        hps[TUNING_OBJECTIVE] = request.objective.metric
    body: dict[str, Any] = {"TrainingJobName": name, "AlgorithmSpecification": spec, "HyperParameters": hps}
    for key in ("RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig", "StoppingCondition",
                "Environment", "VpcConfig", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
                "EnableManagedSpotTraining", "CheckpointConfig", "RetryStrategy"):
        if key in d:
            body[key] = d[key]
    if "OutputDataConfig" in body:  # the service's describe shows KmsKeyId "" when none was given; SDK attach reads it
        body["OutputDataConfig"] = {"KmsKeyId": "", **body["OutputDataConfig"]}
    if "ResourceConfig" not in body:
        hrc = d.get("HyperParameterTuningResourceConfig") or {"InstanceType": "ml.m5.large", "InstanceCount": 1}
        body["ResourceConfig"] = {k: hrc[k] for k in ("InstanceType", "InstanceCount", "VolumeSizeInGB") if k in hrc}
    return body
