#!/usr/bin/env python3
"""Pipe-mode memory and disk benchmark: a k-means job over a large generated channel, runtime + container.

Generates a RecordIO-protobuf channel of --size-gb (streamed: one chunk of rows in memory at a time),
then runs the same job twice with `python -m smlocal.runtime train` and the process backend, in Pipe
mode and in File mode, sampling:
  - peak memory: the sum of RSS over the whole process tree (the runtime process and every child:
    the container's train process and anything it starts), every 0.1 s, with psutil;
  - extra disk: bytes written under the job's directory (peak, sampled every 0.5 s) and the drop in the
    filesystem's free space (noisier: other programs write too).
Prints both modes side by side, with wall time and throughput. Target: Pipe peak <= 400 MB, no extra disk.

    .venv/bin/python scripts/bench_pipe.py --size-gb 0.1      # quick
    .venv/bin/python scripts/bench_pipe.py                    # 2 GB
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from smlocal.data.protobuf import dense_to_records  # noqa: E402
from smlocal.data.recordio import encode_records  # noqa: E402

MB = 1024 * 1024


def generate(directory: Path, size_gb: float, files: int, dim: int, k: int, seed: int = 0) -> tuple[int, int]:
    """Write ``files`` RecordIO-protobuf files totalling about ``size_gb``; returns (rows, bytes)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=10, size=(k, dim)).astype(np.float32)
    per_file = int(size_gb * 1024 ** 3 / files)
    chunk_rows = 20000
    rows = total = 0
    for i in range(files):
        written = 0
        with open(directory / f"part-{i:04d}.pbr", "wb") as f:
            while written < per_file:
                X = centers[rng.integers(0, k, chunk_rows)] + rng.normal(size=(chunk_rows, dim)).astype(np.float32)
                data = encode_records(dense_to_records(X.astype(np.float32)))
                f.write(data)
                written += len(data)
                rows += chunk_rows
        total += written
        print(f"\rgenerating: {total / MB:,.0f} MB", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows, total


def _disk_used(root: Path) -> int:
    used = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if not os.path.islink(os.path.join(dirpath, name)):
                used += st.st_blocks * 512
    return used


class Sampler(threading.Thread):
    def __init__(self, pid: int, job_dir: Path, fs_root: Path):
        super().__init__(daemon=True)
        self.pid, self.job_dir, self.fs_root = pid, job_dir, fs_root
        self.peak_rss = 0
        self.peak_procs = 0
        self.peak_job_disk = 0
        self.free_start = shutil.disk_usage(fs_root).free
        self.min_free = self.free_start
        self.done = threading.Event()

    def run(self) -> None:
        last_disk = 0.0
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self.done.is_set():
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            rss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_procs = max(self.peak_procs, len(procs))
            now = time.monotonic()
            if now - last_disk >= 0.5:
                last_disk = now
                if self.job_dir.exists():
                    self.peak_job_disk = max(self.peak_job_disk, _disk_used(self.job_dir))
                self.min_free = min(self.min_free, shutil.disk_usage(self.fs_root).free)
            time.sleep(0.1)


def run_job(mode: str, data: Path, out: Path, dim: int, k: int, batch: int) -> dict:
    name = f"bench-{mode.lower()}-{int(time.time())}"
    cmd = [sys.executable, "-m", "smlocal", "train", "--algorithm", "kmeans", "--backend", "process",
           "--channel", f"train={data}", "--content-type", "train=application/x-recordio-protobuf",
           "--input-mode", mode, "--hp", f"k={k}", "--hp", f"feature_dim={dim}", "--hp", f"mini_batch_size={batch}",
           "--output", str(out), "--job-name", name]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = out / f"{name}.console.log"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(log, "w") as console:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=console, stderr=subprocess.STDOUT)
        sampler = Sampler(proc.pid, out / name, out)
        sampler.start()
        code = proc.wait()
        sampler.done.set()
        sampler.join()
    wall = time.monotonic() - t0
    tail = log.read_text().splitlines()[-12:]
    status = next((line.split(": ", 1)[1] for line in tail if line.startswith("TrainingJobStatus:")), "?")
    return {"mode": mode, "exit": code, "status": status, "wall_s": wall, "peak_rss": sampler.peak_rss,
            "procs": sampler.peak_procs, "job_disk": sampler.peak_job_disk,
            "free_drop": max(0, sampler.free_start - sampler.min_free), "log": log, "tail": tail}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-gb", type=float, default=2.0)
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--dim", type=int, default=50)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--mini-batch-size", type=int, default=5000)
    ap.add_argument("--workdir", help="where data and jobs go (default: a temporary directory, removed after)")
    ap.add_argument("--modes", default="Pipe,File")
    args = ap.parse_args()

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="smlocal-bench-pipe-"))
    try:
        data = work / "channel"
        t0 = time.monotonic()
        rows, size = generate(data, args.size_gb, args.files, args.dim, args.k)
        os.sync()  # write the data back now, so neither timed run pays for the other's writeback
        print(f"channel: {size / MB:,.0f} MB, {rows:,} rows x {args.dim} float32, {args.files} RecordIO-protobuf "
              f"files (generated in {time.monotonic() - t0:.0f} s)")
        results = [run_job(mode, data, work / "out", args.dim, args.k, args.mini_batch_size)
                   for mode in args.modes.split(",")]
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"{'':28s}" + "".join(f"{r['mode'] + ' mode':>16s}" for r in results))
    rowsfmt = [
        ("status", lambda r: f"{r['status']} ({r['exit']})"),
        ("wall time", lambda r: f"{r['wall_s']:.1f} s"),
        ("throughput", lambda r: f"{rows / r['wall_s'] / 1e3:,.0f} k rows/s"),
        ("peak RSS, process tree", lambda r: f"{r['peak_rss'] / MB:,.0f} MB"),
        ("processes in the tree", lambda r: f"{r['procs']}"),
        ("disk written, job dir", lambda r: f"{r['job_disk'] / MB:,.1f} MB"),
        ("free-space drop (noisy)", lambda r: f"{r['free_drop'] / MB:,.0f} MB"),
    ]
    for label, fmt in rowsfmt:
        print(f"{label:28s}" + "".join(f"{fmt(r):>16s}" for r in results))
    if len(results) == 2:
        a, b = results
        print(f"wall time {a['mode']}/{b['mode']}: {a['wall_s'] / b['wall_s']:.2f}x")
    pipe = next((r for r in results if r["mode"] == "Pipe"), None)
    if pipe:
        verdict = "meets" if pipe["peak_rss"] <= 400 * MB else "MISSES"
        print(f"Pipe mode peak memory {pipe['peak_rss'] / MB:,.0f} MB {verdict} the 400 MB target; "
              f"channel {size / MB:,.0f} MB, job dir grew by {pipe['job_disk'] / MB:,.1f} MB.")
    for r in results:
        if r["exit"] != 0:
            print(f"\n{r['mode']} job failed; last lines of {r['log']}:\n  " + "\n  ".join(r["tail"]))
    return 0 if all(r["exit"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
