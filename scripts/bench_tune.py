#!/usr/bin/env python3
"""Bayesian against Random search on a linear-learner problem where the hyperparameters matter, and the
wall time of parallel training jobs against the same jobs one after another.

The problem: a noisy binary classification with few informative features among many, trained by plain
SGD for a few epochs, so the learning rate (1e-5..1) and the L2 / L1 weights (1e-7..1), all on
logarithmic ranges, decide the validation loss. Each tuning job runs through smlocal's own engine and the
API's training job handlers (process backend), exactly as ``smlocal tune`` runs it; the objective is
``validation:objective_loss`` (minimize). Figures:

- the median, over the seeds, of the best objective each strategy found with the same number of jobs;
- the wall time of one tuning job with MaxParallelTrainingJobs=2 against the same jobs (same seed, so the
  same hyperparameters) with MaxParallelTrainingJobs=1.

The script prints figures and never asserts them.

    python scripts/bench_tune.py            # 20 jobs x 5 seeds per strategy (a few minutes on 2 cores)
    python scripts/bench_tune.py --quick    # a tiny run, to check the script works
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"


def write_data(root: Path, rows: int, dim: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    w = np.zeros(dim)
    w[:5] = [2.0, -1.5, 1.0, 0.8, -0.6]
    for split, n in (("train", rows), ("validation", max(200, rows // 4))):
        X = rng.normal(size=(n, dim)) * np.linspace(0.5, 5.0, dim)
        logits = (X / np.linspace(0.5, 5.0, dim)) @ w
        y = (logits + rng.logistic(scale=1.5, size=n) > 0).astype(np.float32)
        (root / split).mkdir(parents=True, exist_ok=True)
        np.savetxt(root / split / "part.csv", np.column_stack([y, X]), delimiter=",", fmt="%.6g")


def tuning_body(data: Path, out: Path, name: str, strategy: str, jobs: int, parallel: int, seed: int) -> dict:
    log = "Logarithmic"
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy, "RandomSeed": seed,
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "validation:objective_loss"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": {"ContinuousParameterRanges": [
                {"Name": "learning_rate", "MinValue": "0.00001", "MaxValue": "1", "ScalingType": log},
                {"Name": "wd", "MinValue": "0.0000001", "MaxValue": "1", "ScalingType": log},
                {"Name": "l1", "MinValue": "0.0000001", "MaxValue": "1", "ScalingType": log}]}},
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "RoleArn": "arn:aws:iam::123456789012:role/bench",
            "StaticHyperParameters": {"predictor_type": "binary_classifier", "optimizer": "sgd", "epochs": "3",
                                      "mini_batch_size": "100", "use_lr_scheduler": "false",
                                      "early_stopping_patience": "10"},
            "InputDataConfig": [{"ChannelName": c, "ContentType": "text/csv",
                                 "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(data / c)}}}
                                for c in ("train", "validation")],
            "OutputDataConfig": {"S3OutputPath": str(out / name)},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600}},
    }


def run(tuning, body: dict) -> tuple[dict, float]:
    """(the Describe answer, wall seconds) of one tuning job run to its end."""
    name = body["HyperParameterTuningJobName"]
    (Path(body["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"])).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tuning.create(body)
    for thread in list(tuning.ctx.threads):
        if thread.name == f"tuning-{name}":
            thread.join()
    return tuning.describe({"HyperParameterTuningJobName": name}), time.perf_counter() - start


def best_value(answer: dict) -> float:
    return answer["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20, help="training jobs per tuning job (default 20)")
    parser.add_argument("--seeds", type=int, default=5, help="tuning jobs per strategy (default 5)")
    parser.add_argument("--rows", type=int, default=2000, help="training rows (default 2000)")
    parser.add_argument("--dim", type=int, default=50, help="features (default 50)")
    parser.add_argument("--quick", action="store_true", help="3 jobs x 1 seed on 300 rows")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.seeds, args.rows, args.dim = 3, 1, 300, 10

    from smlocal.tuning.commands import local_services

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"problem: binary, {args.rows} train rows x {args.dim} features (5 informative), SGD 3 epochs; tuning "
          f"learning_rate, wd, l1 on log ranges; objective validation:objective_loss (minimize)")
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        root = Path(tmp)
        write_data(root / "data", args.rows, args.dim)
        tuning, _ = local_services(str(root / "state"), "process")
        best: dict[str, list[float]] = {"Bayesian": [], "Random": []}
        for seed in range(args.seeds):
            for strategy in best:
                body = tuning_body(root / "data", root / "out", f"{strategy[:3].lower()}-{seed}", strategy,
                                   args.jobs, 2, seed)
                answer, wall = run(tuning, body)
                best[strategy].append(best_value(answer))
                print(f"  seed {seed} {strategy:<8} best {best[strategy][-1]:.5f}  ({wall:.1f} s, "
                      f"{answer['TrainingJobStatusCounters']['Completed']} completed)", flush=True)
        print(f"\nmedian best objective over {args.seeds} seeds, {args.jobs} jobs each (lower is better):")
        for strategy, values in best.items():
            print(f"  {strategy:<8} {statistics.median(values):.5f}   (all: {', '.join(f'{v:.4f}' for v in values)})")
        bayes, rand = statistics.median(best["Bayesian"]), statistics.median(best["Random"])
        print(f"  Bayesian better than Random: {'yes' if bayes < rand else 'no'} "
              f"({bayes:.5f} vs {rand:.5f}; target: yes)")

        walls = {}
        for parallel in (1, 2):
            body = tuning_body(root / "data", root / "out", f"wall-{parallel}", "Random", args.jobs, parallel, 99)
            walls[parallel] = run(tuning, body)[1]
        print(f"\nwall time of {args.jobs} jobs (Random, same seed): MaxParallelTrainingJobs=1 {walls[1]:.1f} s, "
              f"=2 {walls[2]:.1f} s")
        print(f"  parallel/serial wall time: {walls[2] / walls[1]:.2f}x (target <= 0.65x on 2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
