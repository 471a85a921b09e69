"""Tuning jobs of every strategy for k-means and linear learner, on tiny data, through the real engine and the
API's own training job handlers (process backend): job counts, the parallelism bound, ranges and scaling,
the best job, failures, Stop, and the ``smlocal tune`` / ``describe-tuning --plot`` commands."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from tests.datasets import blobs, csv_bytes, linear_problem
from tests.helpers import run_cli

pytest.importorskip("optuna")

LL_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
KMEANS_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"
CENTERS = [[0, 0, 0, 0], [6, 6, 0, 0], [0, 6, 6, 6]]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune-data")
    files = {"kmeans/train": csv_bytes(blobs(CENTERS, 300, seed=1, std=1.0)),
             "kmeans/test": csv_bytes(blobs(CENTERS, 100, seed=2, std=1.0))}
    for split, seed, n in (("train", 1, 300), ("validation", 2, 100)):
        X, y = linear_problem("binary", n, seed=seed)
        files[f"ll/{split}"] = csv_bytes(X, y)
    for name, content in files.items():
        (root / name).mkdir(parents=True)
        (root / name / "part.csv").write_bytes(content)
    return root


def _channel(root, algorithm: str, name: str) -> dict:
    content_type = "text/csv;label_size=0" if algorithm == "kmeans" else "text/csv"
    return {"ChannelName": name, "ContentType": content_type,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(root / algorithm / name)}}}


KMEANS = {"static": {"k": "3", "feature_dim": "4", "epochs": "2"}, "metric": ("Minimize", "test:msd"),
          "channels": ("train", "test"), "image": KMEANS_IMAGE,
          "ranges": {"IntegerParameterRanges": [{"Name": "mini_batch_size", "MinValue": "10", "MaxValue": "300",
                                                 "ScalingType": "Logarithmic"},
                                                {"Name": "extra_center_factor", "MinValue": "2", "MaxValue": "6",
                                                 "ScalingType": "Linear"}],
                     "CategoricalParameterRanges": [{"Name": "init_method", "Values": ["random", "kmeans++"]}]},
          "grid": {"CategoricalParameterRanges": [{"Name": "init_method", "Values": ["random", "kmeans++"]},
                                                  {"Name": "extra_center_factor", "Values": ["2", "4"]}]}}
LL = {"static": {"predictor_type": "binary_classifier", "epochs": "2", "mini_batch_size": "50"},
      "metric": ("Minimize", "validation:objective_loss"), "channels": ("train", "validation"), "image": LL_IMAGE,
      "ranges": {"ContinuousParameterRanges": [{"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.5",
                                                "ScalingType": "Logarithmic"},
                                               {"Name": "wd", "MinValue": "0.0", "MaxValue": "0.01",
                                                "ScalingType": "Linear"}]},
      # hinge_loss and logistic train a binary classifier; squared_loss is a regressor's loss: that job fails
      "grid": {"CategoricalParameterRanges": [{"Name": "loss", "Values": ["logistic", "squared_loss", "hinge_loss"]}]}}
CASES = {"kmeans": KMEANS, "linear-learner": LL}


def tuning_body(root, algorithm: str, strategy: str, name: str, max_jobs: int = 4, parallel: int = 2,
                static: dict | None = None) -> dict:
    case = CASES[algorithm]
    ranges = case["grid"] if strategy == "Grid" else case["ranges"]
    kind, metric = case["metric"]
    short = "kmeans" if algorithm == "kmeans" else "ll"
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy, "HyperParameterTuningJobObjective": {"Type": kind, "MetricName": metric},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": ranges, "RandomSeed": 7},
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {"TrainingImage": case["image"], "TrainingInputMode": "File"},
            "RoleArn": "arn:aws:iam::123456789012:role/x",
            "StaticHyperParameters": static or case["static"],
            "InputDataConfig": [_channel(root, short, c) for c in case["channels"]],
            "OutputDataConfig": {"S3OutputPath": str(root.parent / f"out-{name}")},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 300}},
    }


def _local(tmp_path):
    from smlocal.tuning.commands import local_services

    lines: list[str] = []
    tuning, training = local_services(str(tmp_path / "state"), "process", echo=lines.append)
    return tuning, training, lines


def _wait(tuning, name: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = tuning.describe({"HyperParameterTuningJobName": name})
        if answer["HyperParameterTuningJobStatus"] in ("Completed", "Failed", "Stopped"):
            return answer
        assert time.monotonic() < deadline, answer
        time.sleep(0.3)


def _jobs(tuning, training, name: str) -> list[dict]:
    summaries = tuning.list_training_jobs({"HyperParameterTuningJobName": name, "MaxResults": 100,
                                           "SortOrder": "Ascending"})["TrainingJobSummaries"]
    return [training.describe({"TrainingJobName": s["TrainingJobName"]}) | {"Summary": s} for s in summaries]


def _max_overlap(jobs: list[dict]) -> int:
    events = sorted([(j["TrainingStartTime"], 1) for j in jobs] + [(j["TrainingEndTime"], -1) for j in jobs],
                    key=lambda e: (e[0], e[1]))
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def _objective(job: dict, metric: str) -> float:
    """The objective from the job's own FinalMetricDataList (its logs), independent of the tuner: for
    linear learner's validation:objective_loss the last epoch's value, as SageMaker's metric definition
    captures it (validation:objective_loss:final, the selected model's, may be another epoch's)."""
    found = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    return found[metric]


def _check_ranges(job: dict, ranges: dict) -> None:
    tuned = job["Summary"]["TunedHyperParameters"]
    assert job["HyperParameters"].items() >= tuned.items()
    for r in ranges.get("IntegerParameterRanges", []):
        assert str(int(tuned[r["Name"]])) == tuned[r["Name"]]
        assert int(r["MinValue"]) <= int(tuned[r["Name"]]) <= int(r["MaxValue"])
    for r in ranges.get("ContinuousParameterRanges", []):
        assert float(r["MinValue"]) <= float(tuned[r["Name"]]) <= float(r["MaxValue"])
    for r in ranges.get("CategoricalParameterRanges", []):
        assert tuned[r["Name"]] in r["Values"]


@pytest.mark.parametrize("algorithm", ["kmeans", "linear-learner"])
@pytest.mark.parametrize("strategy", ["Bayesian", "Random", "Grid", "Hyperband"])
def test_each_strategy_runs_its_jobs_within_the_bounds(strategy, algorithm, data, tmp_path):
    tuning, training, lines = _local(tmp_path)
    name = f"{strategy[:4].lower()}-{algorithm[:2]}"
    body = tuning_body(data, algorithm, strategy, name)
    tuning.create(body)
    answer = _wait(tuning, name)
    expected = {"kmeans": 4, "linear-learner": 3}[algorithm] if strategy == "Grid" else 4
    jobs = _jobs(tuning, training, name)
    assert len(jobs) == expected and len(lines) >= expected
    assert sum(answer["TrainingJobStatusCounters"].values()) == expected
    assert all(j["TrainingJobName"].startswith(f"{name}-0") and j["TuningJobArn"] == answer["HyperParameterTuningJobArn"]
               for j in jobs)
    assert _max_overlap(jobs) == 2  # MaxParallelTrainingJobs, reached and never exceeded
    metric = CASES[algorithm]["metric"][1]
    ranges = body["HyperParameterTuningJobConfig"]["ParameterRanges"]
    for job in jobs:
        _check_ranges(job, ranges)
        assert job["HyperParameters"]["_tuning_objective_metric"] == metric
    done = [j for j in jobs if j["TrainingJobStatus"] == "Completed"]
    best = min(done, key=lambda j: _objective(j, metric))
    assert answer["BestTrainingJob"]["TrainingJobName"] == best["TrainingJobName"]
    assert math.isclose(answer["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
                        _objective(best, metric))
    if strategy == "Grid":
        combos = {tuple(sorted(j["Summary"]["TunedHyperParameters"].items())) for j in jobs}
        assert len(combos) == expected  # every combination once
    if strategy == "Grid" and algorithm == "linear-learner":  # the squared_loss job failed; the search went on
        failed = [j for j in jobs if j["TrainingJobStatus"] == "Failed"]
        assert [j["HyperParameters"]["loss"] for j in failed] == ["squared_loss"]
        assert answer["TrainingJobStatusCounters"]["NonRetryableError"] == 1
        assert answer["HyperParameterTuningJobStatus"] == "Completed"
    else:
        assert answer["HyperParameterTuningJobStatus"] == "Completed", answer


def test_logarithmic_ranges_spread_the_jobs_over_orders_of_magnitude(data, tmp_path):
    tuning, training, _ = _local(tmp_path)
    body = tuning_body(data, "linear-learner", "Random", "logspread", max_jobs=6, parallel=2)
    body["HyperParameterTuningJobConfig"]["ParameterRanges"] = {"ContinuousParameterRanges": [
        {"Name": "learning_rate", "MinValue": "0.00001", "MaxValue": "1", "ScalingType": "Logarithmic"}]}
    body["HyperParameterTuningJobConfig"]["RandomSeed"] = 3
    tuning.create(body)
    _wait(tuning, "logspread")
    rates = [float(j["Summary"]["TunedHyperParameters"]["learning_rate"]) for j in _jobs(tuning, training, "logspread")]
    logs = sorted(math.log10(r) for r in rates)
    # six log-uniform draws over [-5, 0]: they span several decades (a linear scale puts nearly all above 0.1)
    assert logs[-1] - logs[0] > 2 and sum(r < 0.1 for r in rates) >= 2


def test_stop_ends_the_running_jobs_as_stopped(data, tmp_path):
    tuning, training, _ = _local(tmp_path)
    static = {"predictor_type": "binary_classifier", "epochs": "400", "mini_batch_size": "10",
              "early_stopping_patience": "500"}
    tuning.create(tuning_body(data, "linear-learner", "Random", "stopme", max_jobs=6, parallel=2, static=static))
    deadline = time.monotonic() + 60
    while True:
        jobs = _jobs(tuning, training, "stopme")
        if len(jobs) == 2 and all(j.get("SecondaryStatus") == "Training" for j in jobs):
            break
        assert time.monotonic() < deadline, jobs
        time.sleep(0.2)
    tuning.stop({"HyperParameterTuningJobName": "stopme"})
    answer = _wait(tuning, "stopme", timeout=60)
    jobs = _jobs(tuning, training, "stopme")
    assert answer["HyperParameterTuningJobStatus"] == "Stopped"
    assert [j["TrainingJobStatus"] for j in jobs] == ["Stopped", "Stopped"]
    assert answer["TrainingJobStatusCounters"]["Stopped"] == 2 and "BestTrainingJob" not in answer


def test_validation_errors_start_no_job(data, tmp_path):
    from smlocal.api.protocol import ApiError

    tuning, training, _ = _local(tmp_path)
    body = tuning_body(data, "kmeans", "Random", "bad", max_jobs=2, parallel=3)
    with pytest.raises(ApiError) as caught:
        tuning.create(body)
    assert caught.value.code == "ValidationException" and "MaxParallelTrainingJobs" in caught.value.message
    assert training.list({})["TrainingJobSummaries"] == []


def test_warm_start_seeds_the_study_with_the_parents_jobs(data, tmp_path):
    tuning, training, _ = _local(tmp_path)
    tuning.create(tuning_body(data, "kmeans", "Random", "parent", max_jobs=2, parallel=2))
    _wait(tuning, "parent")
    child = tuning_body(data, "kmeans", "Bayesian", "child", max_jobs=2, parallel=2)
    child["WarmStartConfig"] = {"WarmStartType": "IdenticalDataAndAlgorithm",
                                "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "parent"}]}
    tuning.create(child)
    assert _wait(tuning, "child")["HyperParameterTuningJobStatus"] == "Completed"
    other = tuning_body(data, "linear-learner", "Random", "other", max_jobs=2, parallel=2)
    other["WarmStartConfig"] = child["WarmStartConfig"]
    from smlocal.api.protocol import ApiError

    with pytest.raises(ApiError, match="ran another algorithm"):
        tuning.create(other)


def test_tune_and_describe_tuning_commands(data, tmp_path):
    job_file = tmp_path / "tuning.json"
    job_file.write_text(json.dumps(tuning_body(data, "linear-learner", "Bayesian", "cli-ll", max_jobs=3)))
    out = tmp_path / "state"
    done = run_cli("tune", "--job", str(job_file), "--output", str(out), "--backend", "process", timeout=180)
    assert done.returncode == 0, done.stderr
    progress = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert len(progress) == 3 and all("validation:objective_loss=" in line and " best " in line for line in progress)
    # parallel jobs finish in any order: one line per job, each naming its number and hyperparameters
    assert sorted(line[:19] for line in progress) == [f"[  {n}/3] cli-ll-00{n}-" for n in (1, 2, 3)]
    assert all("learning_rate=" in line for line in progress)
    assert "cli-ll: Completed (Bayesian)" in done.stdout
    plot = tmp_path / "plot.png"
    shown = run_cli("describe-tuning", "cli-ll", "--output", str(out), "--plot", str(plot))
    assert shown.returncode == 0, shown.stderr
    assert "best: cli-ll-00" in shown.stdout and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    jobs_dir = json.loads(job_file.read_text())["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"]
    assert f"training jobs' files in {jobs_dir}" in done.stdout
    job = next(Path(jobs_dir).glob("cli-ll-001-*/training-job.json"))
    assert json.loads(job.read_text())["TrainingJobStatus"] == "Completed"
    bad = json.loads(job_file.read_text())
    bad["TrainingJobDefinition"]["StaticHyperParameters"]["learning_rate"] = "0.1"
    job_file.write_text(json.dumps(bad | {"HyperParameterTuningJobName": "cli-bad"}))
    refused = run_cli("tune", "--job", str(job_file), "--output", str(out))
    assert refused.returncode == 2 and "StaticHyperParameters.learning_rate" in refused.stderr
    assert "ValidationException" in refused.stderr
