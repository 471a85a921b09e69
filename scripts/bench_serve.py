#!/usr/bin/env python3
"""Serving benchmark: our ``container/serve`` next to a minimal flask + gunicorn app, same run, same payloads.

Both servers run the same number of gunicorn workers on 127.0.0.1 (the minimal app sync workers, ours its
threaded ones) and serve the same k-means model. The minimal app (written into a temp dir by this script) does only what any server must: parse
the body with numpy, compute nearest centroids, dump JSON. The difference is the cost of our protocol
handling (content negotiation, validation, error mapping). Load: a fixed number of requests from a
fixed number of client threads; the script stops both servers when it is done.

    .venv/bin/python scripts/bench_serve.py [--requests 2000] [--concurrency 8] [--workers 2]

It prints figures and ratios; it asserts nothing about timings.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from smlocal.artifacts.kmeans import KMeansModel, dumps_kmeans  # noqa: E402

MINIMAL_APP = textwrap.dedent('''
    """Baseline: flask + numpy nearest centroid, nothing else."""
    import io, json, os
    import flask
    import numpy as np

    CENTERS = np.load(os.environ["BENCH_CENTERS"]).astype(np.float32)
    app = flask.Flask(__name__)

    @app.get("/ping")
    def ping():
        return ""

    @app.post("/invocations")
    def invocations():
        body = flask.request.get_data()
        if flask.request.content_type == "text/csv":
            X = np.loadtxt(io.BytesIO(body), delimiter=",", ndmin=2, dtype=np.float32)
        else:
            X = np.array([i["features"] for i in json.loads(body)["instances"]], dtype=np.float32)
        d2 = ((X[:, None, :] - CENTERS[None]) ** 2).sum(-1)
        idx = d2.argmin(1)
        dist = np.sqrt(d2[np.arange(len(X)), idx])
        out = [{"closest_cluster": float(i), "distance_to_cluster": float(v)} for i, v in zip(idx, dist)]
        return flask.Response(json.dumps({"predictions": out}), content_type="application/json")
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not become ready")


def start_ours(tmp: Path, centers: np.ndarray, workers: int) -> tuple[subprocess.Popen, int]:
    base = tmp / "opt_ml"
    (base / "model").mkdir(parents=True)
    (base / "model" / "model_algo-1").write_bytes(dumps_kmeans(KMeansModel(centers)))
    port = free_port()
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_BIND_TO_PORT": str(port),
           "SMLOCAL_BIND_HOST": "127.0.0.1", "MODEL_SERVER_WORKERS": str(workers), "SMLOCAL_LOG_LEVEL": "warning",
           "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, str(REPO / "container" / "serve")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


def start_minimal(tmp: Path, centers: np.ndarray, workers: int) -> tuple[subprocess.Popen, int]:
    (tmp / "minimal_app.py").write_text(MINIMAL_APP)
    np.save(tmp / "centers.npy", centers)
    port = free_port()
    env = {**os.environ, "BENCH_CENTERS": str(tmp / "centers.npy")}
    cmd = [sys.executable, "-m", "gunicorn", "--chdir", str(tmp), "-w", str(workers), "-k", "sync",
           "-b", f"127.0.0.1:{port}", "--log-level", "warning", "minimal_app:app"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


def load(port: int, body: bytes, content_type: str, total: int, concurrency: int) -> dict:
    """``total`` POSTs from ``concurrency`` threads; latencies in seconds, wall time, failures."""
    latencies: list[float] = []
    failures = []
    lock = threading.Lock()
    counter = iter(range(total))
    headers = {"Content-Type": content_type, "Accept": "application/json"}

    def worker():
        local = []
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            t0 = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("POST", "/invocations", body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if resp.status != 200 or not data.startswith(b'{"predictions"'):
                    failures.append(resp.status)
            except OSError as exc:
                failures.append(repr(exc))
            local.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {"latencies": latencies, "wall": wall, "failures": failures}


def summarize(runs: list[dict]) -> dict:
    lat = np.array([x for r in runs for x in r["latencies"]])
    wall = sum(r["wall"] for r in runs)
    return {"rps": len(lat) / wall, "p50": np.percentile(lat, 50) * 1e3, "p99": np.percentile(lat, 99) * 1e3,
            "n": len(lat), "failures": sum(len(r["failures"]) for r in runs)}


def payloads(rng, centers, rows: int) -> dict[str, tuple[bytes, str]]:
    X = (centers[rng.integers(0, len(centers), rows)] + rng.normal(size=(rows, centers.shape[1]))).astype(np.float32)
    csv_body = "\n".join(",".join(repr(float(v)) for v in row) for row in X).encode()
    json_body = json.dumps({"instances": [{"features": [float(v) for v in X[0]]}]}).encode()
    return {f"{rows}-row CSV": (csv_body, "text/csv"), "1-row JSON": (json_body, "application/json")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per scenario and server (split in 2 rounds)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--dim", type=int, default=10)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    centers = (rng.normal(size=(args.k, args.dim)) * 5).astype(np.float32)
    scenarios = payloads(rng, centers, args.rows)
    procs = []
    with tempfile.TemporaryDirectory(prefix="bench_serve_") as tmp_name:
        tmp = Path(tmp_name)
        try:
            ours, ours_port = start_ours(tmp / "ours", centers, args.workers)
            procs.append(ours)
            (tmp / "minimal").mkdir()
            minimal, minimal_port = start_minimal(tmp / "minimal", centers, args.workers)
            procs.append(minimal)
            wait_ready(ours_port, ours)
            wait_ready(minimal_port, minimal)
            servers = {"minimal flask+numpy": minimal_port, "smlocal serve": ours_port}
            print(f"{args.workers} gunicorn workers each (minimal: sync, ours: threaded), "
                  f"{args.concurrency} client threads, "
                  f"{args.requests} requests per scenario and server, k={args.k}, d={args.dim}, "
                  f"{os.cpu_count()} CPUs (client and servers share them)\n")
            print(f"{'scenario':<16} {'server':<20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}")
            for scenario, (body, ctype) in scenarios.items():
                for port in servers.values():  # warm-up: imports, first-request paths
                    load(port, body, ctype, 50, args.concurrency)
                runs: dict[str, list] = {name: [] for name in servers}
                for _ in range(2):  # interleave so that drift on a shared machine hits both alike
                    for name, port in servers.items():
                        runs[name].append(load(port, body, ctype, args.requests // 2, args.concurrency))
                stats = {name: summarize(r) for name, r in runs.items()}
                for name, s in stats.items():
                    print(f"{scenario:<16} {name:<20} {s['rps']:>9.1f} {s['p50']:>8.2f} {s['p99']:>8.2f} "
                          f"{s['failures']:>7}")
                base, mine = stats["minimal flask+numpy"], stats["smlocal serve"]
                print(f"{scenario:<16} {'ratio ours/minimal':<20} {mine['rps'] / base['rps']:>8.2f}x "
                      f"{mine['p50'] / base['p50']:>7.2f}x {mine['p99'] / base['p99']:>7.2f}x   "
                      f"(target: req/s >= 0.90x, p99 <= 2x)\n")
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
