#!/usr/bin/env python3
"""One host against two, side by side, on the same job: wall time, model quality and the speed-up.

Each job runs through the runtime exactly as ``smlocal train`` does (``run_training`` with the process
backend): ShardedByS3Key RecordIO-protobuf train files, hosts ``algo-1..algo-N`` as local processes,
with several hosts the real MXNet KVStore dist_sync (scheduler and server on the first host). The data
is written once (not timed); quality is measured on held-out rows with the job's ``model_algo-1``:

- k-means: MSD of the held-out rows to the final centers (lower is better);
- linear learner (binary): accuracy of the held-out rows with the model's own threshold.

Wall time is the whole job: start of the host processes, MXNet import and KVStore rendezvous (multi-host
only), training, model packaging. "train s" is the first host's own ``totaltime - setuptime`` (its
``#metrics`` lines): the work after the rendezvous (streaming or epochs, merging, shrink or selection,
model), i.e. the part that more hosts can speed up. (MXNet imports scikit-learn, so on several hosts that
import, ~0.2-0.5 s, falls into the setup; on one host it falls into the training.) On a machine with fewer free cores than processes (2 hosts + the
KVStore scheduler and server) the hosts share the cores, so a speed-up below 1 is expected there:
the figure shows the cost of the cooperation, not the gain of a second machine. The script prints
figures and never asserts them.

    python scripts/bench_distributed.py               # default size
    python scripts/bench_distributed.py --scale 0.2   # smaller, while developing
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from smlocal.artifacts.loader import load_model_dir  # noqa: E402
from smlocal.data.protobuf import dense_to_records  # noqa: E402
from smlocal.data.recordio import encode_records  # noqa: E402
from smlocal.runtime.jobs import run_training  # noqa: E402
from smlocal.runtime.jobspec import parse_job  # noqa: E402
from smlocal.runtime.process import ProcessBackend  # noqa: E402
from smlocal.runtime.progress import Display  # noqa: E402

FILES = 8
DIM = 20


def kmeans_data(rows: int, seed: int = 0) -> tuple[np.ndarray, None]:
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-6, 6, size=(12, DIM))
    return (centers[rng.integers(0, len(centers), rows)] + rng.normal(size=(rows, DIM))).astype(np.float32), None


def linear_data(rows: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=DIM)
    Z = rng.normal(size=(rows, DIM))
    y = (Z @ w + 1.0 * rng.normal(size=rows) > 0).astype(np.float32)
    return (Z * np.linspace(1, 10, DIM) + np.linspace(-20, 20, DIM)).astype(np.float32), y


def write_shards(directory: Path, X: np.ndarray, y: np.ndarray | None) -> None:
    directory.mkdir(parents=True)
    for i, part in enumerate(np.array_split(np.arange(len(X)), FILES)):
        records = dense_to_records(X[part], None if y is None else y[part])
        (directory / f"part-{i}.pbr").write_bytes(encode_records(records))


def job(name: str, algorithm: str, train: Path, out: Path, hosts: int, hyperparameters: dict) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": f"382416733822.dkr.ecr.us-east-1.amazonaws.com/{algorithm}:1",
                                   "TrainingInputMode": "File"},
        "HyperParameters": hyperparameters,
        "InputDataConfig": [{"ChannelName": "train", "ContentType": "application/x-recordio-protobuf",
                             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"file://{train}",
                                                             "S3DataDistributionType": "ShardedByS3Key"}}}],
        "OutputDataConfig": {"S3OutputPath": str(out)},
        "ResourceConfig": {"InstanceCount": hosts, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 1},
    }


def run(body: dict, work: Path):
    started = time.perf_counter()
    result = run_training(parse_job(body), ProcessBackend(), Display(live=False, stream=io.StringIO()))
    wall = time.perf_counter() - started
    if result.status != "Completed":
        raise SystemExit(f"{body['TrainingJobName']} failed: {result.failure_reason}")
    target = work / f"model-{body['TrainingJobName']}"
    with tarfile.open(result.model_artifacts) as tar:
        tar.extractall(target)
    return wall, training_seconds(result.plan.logs_dir / "algo-1.log"), load_model_dir(target)


def training_seconds(log: Path) -> float:
    """``totaltime - setuptime`` of a host's ``#metrics`` lines, in seconds."""
    timers = {}
    for line in log.read_text().splitlines():
        if line.startswith("#metrics "):
            metrics = json.loads(line[len("#metrics "):])["Metrics"]
            timers.update({k: v["sum"] for k, v in metrics.items() if k in ("totaltime", "setuptime")})
    return (timers["totaltime"] - timers["setuptime"]) / 1000.0


def msd(centers: np.ndarray, X: np.ndarray) -> float:
    c = centers.astype(np.float64)
    d = (X.astype(np.float64) ** 2).sum(1)[:, None] - 2 * X.astype(np.float64) @ c.T + (c * c).sum(1)[None]
    return float(np.maximum(d.min(axis=1), 0).mean())


def accuracy(model, X: np.ndarray, y: np.ndarray) -> float:
    scores = np.asarray(model.scores(X)).reshape(len(X), -1)[:, 0]
    return float(np.mean((scores > model.threshold) == (y > 0.5)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default row counts")
    parser.add_argument("--hosts", type=int, default=2, help="the multi-host job's InstanceCount (default 2)")
    args = parser.parse_args()
    km_rows, ll_rows, held_out = int(1_500_000 * args.scale), int(1_000_000 * args.scale), 20_000
    cases = [
        ("k-means", "kmeans", f"{km_rows:,} x {DIM}, k=12", kmeans_data(km_rows + held_out),
         {"k": "12", "feature_dim": str(DIM), "mini_batch_size": "10000", "epochs": "2"}, "MSD (lower is better)"),
        ("linear learner", "linear-learner", f"{ll_rows:,} x {DIM}, binary", linear_data(ll_rows + held_out),
         {"predictor_type": "binary_classifier", "feature_dim": str(DIM), "mini_batch_size": "1000",
          "epochs": "5", "num_models": "8", "early_stopping_patience": "100"}, "accuracy"),
    ]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# bench_distributed: {platform.python_version()}, numpy {np.__version__}, {cores} usable cores, "
          f"{FILES} train files (RecordIO-protobuf), process backend, 1 vs {args.hosts} hosts")
    print(f"{'job':<16}{'data':<28}{'hosts':>6}{'wall s':>9}{'speed-up':>9}{'train s':>9}{'speed-up':>9}"
          f"{'quality':>12}  metric")
    with tempfile.TemporaryDirectory(prefix="smlocal-bench-dist-") as tmp:
        work = Path(tmp)
        for label, algorithm, shape, (X, y), hps, metric in cases:
            train = work / f"{algorithm}-train"
            write_shards(train, X[:-held_out], None if y is None else y[:-held_out])
            X_test, y_test = X[-held_out:], None if y is None else y[-held_out:]
            base = {}
            for hosts in (1, args.hosts):
                wall, trained, model = run(job(f"{algorithm}-{hosts}", algorithm, train, work / "out", hosts, hps),
                                           work)
                base.setdefault("wall", wall)
                base.setdefault("train", trained)
                quality = msd(model.centers, X_test) if algorithm == "kmeans" else accuracy(model, X_test, y_test)
                print(f"{label:<16}{shape:<28}{hosts:>6}{wall:>9.2f}{base['wall'] / wall:>8.2f}x{trained:>9.2f}"
                      f"{base['train'] / trained:>8.2f}x{quality:>12.5f}  {metric}", flush=True)
    print(f"# speed-up = wall(1 host) / wall({args.hosts} hosts). With {cores} cores for {args.hosts} training "
          f"processes plus the KVStore scheduler and server, the hosts compete for the same cores, and every "
          f"multi-host job also pays a fixed start (MXNet import, rendezvous, ~3-6 s here) and, for the linear "
          f"learner, one allreduce per mini-batch step; on separate machines each host would have its own cores.")


if __name__ == "__main__":
    main()
