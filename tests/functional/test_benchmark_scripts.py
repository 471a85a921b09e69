"""The benchmark scripts still run end to end (tiny sizes). They print figures; nothing here asserts a
timing — the figures live in the README and benchmarks/*.txt — but a script that breaks fails here."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO, needs_mxnet

# script -> (tiny-size arguments, a line (or lines) of its side-by-side comparison that must be printed)
SMALL = {
    "bench_decode.py": (["--rows", "20000", "--sdk-rows", "2000", "--repeat", "1"], "smlocal File mode / SDK reader"),
    "bench_csv.py": (["--rows", "5000", "--loadtxt-rows", "1000", "--repeat", "1", "--output", ""],
                     "smlocal File mode / loadtxt"),
    "bench_kmeans.py": (["--scale", "0.01"], "sklearn KMeans lloyd"),
    "bench_linear.py": (["--rows", "20000", "--dim", "10", "--repeat", "1"], "time ratio smlocal (32 models) / SGD"),
    "bench_serve.py": (["--requests", "40", "--concurrency", "2", "--workers", "1", "--train-rows", "2000", "--no-mlflow"],
                       ("ratio ours/minimal", "peak RSS smlocal serve")),
    "bench_pipe.py": (["--size-gb", "0.005", "--files", "2"], "wall time Pipe/File"),
    "bench_s3_pipe.py": (["--size-mb", "4", "--objects", "2"], "GetObject requests the server saw: 2 for 2 objects"),
    "bench_distributed.py": (["--scale", "0.01"], "speed-up"),
    "bench_tune.py": (["--quick"], "parallel/serial wall time"),
}
NEEDS_MXNET = {"bench_distributed.py"}  # two hosts: MXNet's KVStore


@pytest.mark.parametrize("script", [pytest.param(s, marks=needs_mxnet) if s in NEEDS_MXNET else s for s in sorted(SMALL)])
def test_benchmark_runs(script):
    args, expected = SMALL[script]
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / script), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for line in (expected,) if isinstance(expected, str) else expected:
        assert line in proc.stdout, proc.stdout[-3000:]


def test_bench_linear_scaling_runs():
    """bench_linear.py --scaling: the table of time against num_models, and peak RSS in the comparison."""
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_linear.py"), "--scaling", "--models", "1,4",
                           "--rows", "5000", "--dim", "5"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [line.split() for line in proc.stdout.splitlines()]
    assert [row[0] for row in lines if row and row[0] in ("1", "4")] == ["1", "4"], proc.stdout
