#!/usr/bin/env python
"""Linear learner benchmark: smlocal's 32 parallel models against scikit-learn, side by side.

For each problem type (binary, multiclass, regression) it builds a synthetic problem of ``--rows`` x
``--dim`` (default 1,000,000 x 50), holds out 20 %, and prints hold-out accuracy (MSE for regression)
and wall time of:

- smlocal: ``container/train``'s code in this process on a temporary /opt/ml, training data as a
  RecordIO-protobuf File channel, ``num_models=32``, default epochs, early stopping on (the training
  pass serves as validation); the hold-out is scored with the saved ``model_algo-1``;
- scikit-learn ``LogisticRegression`` / ``LinearRegression`` (exact solvers);
- scikit-learn ``SGDClassifier`` / ``SGDRegressor`` (one model, the same 15 epochs, standardised input).

Targets (printed as ratios, never asserted): accuracy >= scikit-learn's best - 0.5 points (MSE <= 1.02 x
the best), smlocal's 32 models in <= 0.4 x the wall time SGD takes for one (issue 18), and a peak RSS of
smlocal's run under 2 x the size of the data as float32. Data generation and file writing are not
timed; smlocal's time includes reading and parsing the files. smlocal trains in a fresh process of its
own, so that its peak RSS (VmHWM) is its own, not this script's arrays.

``--scaling`` prints how smlocal's time grows with ``num_models`` (1, 8, 32, 64) on the binary case.

    .venv/bin/python scripts/bench_linear.py --rows 100000      # quick
    .venv/bin/python scripts/bench_linear.py                    # the full 1,000,000 x 50 run
    .venv/bin/python scripts/bench_linear.py --scaling          # time against num_models, binary case
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from smlocal.algorithms import linear_learner
from smlocal.logs import setup_logging
from smlocal.artifacts.linear_learner import loads_linear_learner
from smlocal.data.protobuf import dense_to_records
from smlocal.data.recordio import encode_records
from smlocal.environment import load_training_env

from benchlib import rss_mb  # scripts/, beside this file

EPOCHS = 15  # linear learner's default
ROOT = Path(__file__).resolve().parents[1]
MB = 2 ** 20


def make_problem(kind: str, rows: int, dim: int, seed: int = 0):
    """Features with unequal scales and offsets; labels from a noisy linear model."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.2, 5.0, dim)
    offset = rng.uniform(-3.0, 3.0, dim)
    Z = rng.standard_normal((rows, dim)).astype(np.float32)
    X = (Z * scale + offset).astype(np.float32)
    if kind == "binary":
        logit = Z @ (rng.standard_normal(dim) * 2.0 / np.sqrt(dim)) + 0.3
        y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    elif kind == "multiclass":
        logits = Z @ (rng.standard_normal((dim, 4)) * 2.0 / np.sqrt(dim))
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        y = (rng.random((rows, 1)) > p.cumsum(1)).sum(1).astype(np.float32)
    else:
        y = (Z @ rng.standard_normal(dim) + 10.0 + rng.standard_normal(rows) * 2.0).astype(np.float32)
    return X, y


def write_job(base: Path, kind: str, X: np.ndarray, y: np.ndarray, extra: dict) -> None:
    hps = {"predictor_type": {"binary": "binary_classifier", "multiclass": "multiclass_classifier",
                              "regression": "regressor"}[kind], "num_models": "32", **extra}
    hps = {k: str(v) for k, v in hps.items()}
    if kind == "multiclass":
        hps["num_classes"] = str(int(y.max()) + 1)
    cfg = base / "input" / "config"
    cfg.mkdir(parents=True)
    (base / "model").mkdir()
    (cfg / "hyperparameters.json").write_text(json.dumps(hps))
    (cfg / "inputdataconfig.json").write_text(json.dumps(
        {"train": {"ContentType": "application/x-recordio-protobuf", "TrainingInputMode": "File"}}))
    (cfg / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    data = base / "input" / "data" / "train"
    data.mkdir(parents=True)
    with open(data / "train.rec", "wb") as out:
        for start in range(0, len(X), 65536):
            out.write(encode_records(dense_to_records(X[start:start + 65536], y[start:start + 65536])))


def run_smlocal(kind: str, Xtr, ytr, Xte, yte, extra: dict) -> dict:
    """smlocal's run in a fresh process: quality on the hold-out, seconds, epochs, peak RSS."""
    with tempfile.TemporaryDirectory(prefix="bench-ll-") as tmp:
        base = Path(tmp)
        write_job(base, kind, Xtr, ytr, extra)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        out = subprocess.run([sys.executable, __file__, "--worker", str(base)], capture_output=True, text=True,
                             env=env)
        if out.returncode != 0:
            raise RuntimeError(f"smlocal's run failed:\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        model = loads_linear_learner((base / "model" / "model_algo-1").read_bytes())
    result["quality"] = _quality(kind, model.outputs(Xte), yte)
    return result


def worker(base: Path) -> dict:
    """Runs in its own process: train the job under ``base``; time, epochs and memory as JSON."""
    log = io.StringIO()
    setup_logging("info", stream=log)
    before = rss_mb("VmRSS")
    started = time.perf_counter()
    with contextlib.redirect_stdout(log):  # the #metrics lines
        linear_learner.train(load_training_env(base))
    elapsed = time.perf_counter() - started
    epochs = len(re.findall(r"#early_stopping_criteria_metric", log.getvalue()))
    return {"seconds": elapsed, "epochs": epochs, "peak_rss_mb": rss_mb("VmHWM"), "start_rss_mb": before}


def _quality(kind: str, outputs: dict, y: np.ndarray) -> float:
    if kind == "regression":
        return float(np.mean((outputs["score"] - y) ** 2))
    return float(np.mean(outputs["predicted_label"] == y))


def best_smlocal(kind: str, Xtr, ytr, Xte, yte, extra: dict, repeat: int) -> dict:
    """The fastest of ``repeat`` runs (the runs are deterministic: the same model each time); the peak RSS
    is the largest."""
    runs = [run_smlocal(kind, Xtr, ytr, Xte, yte, extra) for _ in range(repeat)]
    return {**min(runs, key=lambda r: r["seconds"]), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def run_sklearn(kind: str, Xtr, ytr, Xte, yte, repeat: int = 1) -> dict[str, tuple[float, float]]:
    from sklearn.linear_model import LinearRegression, LogisticRegression, SGDClassifier, SGDRegressor
    from sklearn.metrics import accuracy_score, mean_squared_error
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "regression":
        exact = ("LinearRegression", LinearRegression())
        sgd = ("SGDRegressor", make_pipeline(StandardScaler(), SGDRegressor(max_iter=EPOCHS, tol=None, random_state=0)))
        score = mean_squared_error
    else:
        exact = ("LogisticRegression", make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)))
        sgd = ("SGDClassifier", make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", max_iter=EPOCHS,
                                                                              tol=None, random_state=0)))
        score = accuracy_score
    out = {}
    for (name, est), times in ((exact, 1), (sgd, repeat)):  # the SGD peer, the ratio's base, as often as smlocal
        elapsed = []
        for _ in range(times):
            started = time.perf_counter()
            est.fit(Xtr, ytr)
            elapsed.append(time.perf_counter() - started)
        out[name] = (float(score(yte, est.predict(Xte))), min(elapsed))
    return out


def compare(args, extra: dict) -> None:
    """smlocal's 32 models against scikit-learn on each problem type."""
    print(f"linear learner benchmark: {args.rows:,} x {args.dim}, 20 % hold-out, {EPOCHS} epochs; "
          f"smlocal and SGD best of {args.repeat} (wall-clock noise on a shared machine)")
    for kind in args.kinds.split(","):
        X, y = make_problem(kind, args.rows, args.dim)
        cut = int(len(X) * 0.8)
        Xtr, ytr, Xte, yte = X[:cut], y[:cut], X[cut:], y[cut:]
        ours = best_smlocal(kind, Xtr, ytr, Xte, yte, extra, args.repeat)
        q, t, epochs = ours["quality"], ours["seconds"], ours["epochs"]
        sk = run_sklearn(kind, Xtr, ytr, Xte, yte, args.repeat)
        metric = "MSE" if kind == "regression" else "accuracy"
        print(f"\n[{kind}] hold-out {metric} / wall time / per epoch")
        print(f"  {'smlocal (32 models, ' + str(epochs) + ' epochs)':38s} {q:10.5f}  {t:8.2f} s  {t / epochs:6.2f} s")
        for name, (sq, st) in sk.items():
            per_epoch = f"{st / EPOCHS:6.2f} s" if name.startswith("SGD") else ""
            print(f"  {name + ' (1 model)':38s} {sq:10.5f}  {st:8.2f} s  {per_epoch}")
        sgd_time = [st for name, (_, st) in sk.items() if name.startswith("SGD")][0]
        if kind == "regression":
            best = min(sq for sq, _ in sk.values())
            print(f"  MSE ratio smlocal / best sklearn: {q / best:.4f}  (target <= 1.02)")
        else:
            best = max(sq for sq, _ in sk.values())
            print(f"  accuracy smlocal - best sklearn: {100 * (q - best):+.3f} points  (target >= -0.5)")
        print(f"  time ratio smlocal (32 models) / SGD (1 model): {t / sgd_time:.3f}  (target <= 0.4)")
        print_memory(ours, Xtr)


def print_memory(ours: dict, Xtr: np.ndarray) -> None:
    data_mb = Xtr.nbytes / MB
    peak = ours["peak_rss_mb"]
    print(f"  peak RSS of smlocal's run (its own process): {peak:.0f} MB, {ours['start_rss_mb']:.0f} MB of it "
          f"before training (interpreter and imports); train data {data_mb:.0f} MB as float32: "
          f"{peak / data_mb:.2f} x  (target < 2)")


def scaling(args, extra: dict) -> None:
    """How smlocal's time grows with num_models on the binary case (early stopping as in the comparison)."""
    counts = [int(v) for v in args.models.split(",")]
    print(f"linear learner scaling with num_models: binary, {args.rows:,} x {args.dim}, 20 % hold-out")
    X, y = make_problem("binary", args.rows, args.dim)
    cut = int(len(X) * 0.8)
    rows = [(m, run_smlocal("binary", X[:cut], y[:cut], X[cut:], y[cut:], {**extra, "num_models": m}))
            for m in counts]
    base = rows[0][1]["seconds"] / rows[0][1]["epochs"]
    print(f"  {'num_models':>10s} {'epochs':>6s} {'wall s':>8s} {'s/epoch':>8s} {'ratio':>6s} "
          f"{'accuracy':>9s} {'peak RSS':>9s}")
    for m, r in rows:
        per_epoch = r["seconds"] / r["epochs"]
        print(f"  {m:10d} {r['epochs']:6d} {r['seconds']:8.2f} {per_epoch:8.3f} {per_epoch / base:6.2f} "
              f"{r['quality']:9.5f} {r['peak_rss_mb']:6.0f} MB")
    print(f"  ratio: s per epoch against num_models={counts[0]} (epochs differ with early stopping)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--kinds", default="binary,multiclass,regression")
    parser.add_argument("--hp", action="append", default=[], help="extra smlocal hyperparameter NAME=VALUE")
    parser.add_argument("--repeat", type=int, default=3, help="runs of smlocal and of SGD; the fastest counts")
    parser.add_argument("--scaling", action="store_true", help="time against num_models (binary case)")
    parser.add_argument("--models", default="1,8,32,64", help="the num_models values of --scaling")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(args.worker)))
        return 0
    extra = dict(h.split("=", 1) for h in args.hp)
    if args.scaling:
        scaling(args, extra)
    else:
        compare(args, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
