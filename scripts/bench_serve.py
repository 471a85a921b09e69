#!/usr/bin/env python3
"""Serving benchmark: our ``container/serve`` next to two servers of a scikit-learn KMeans, same run.

The model: smlocal's k-means trained on a synthetic set (k=10, d=10), and a scikit-learn ``KMeans``
fitted on the same rows (Lloyd, started from smlocal's centers). Its peers:
- a minimal flask + numpy app (written into a temp dir by this script): ``np.loadtxt`` or ``json.loads``,
  ``KMeans.predict``, ``json.dumps``, on gunicorn sync workers: what any server must do, nothing else;
- ``container/serve`` alone (gunicorn's sync workers with a slow lane of threads, ``serving.worker``) and as the
  images run it, nginx in front of sync workers, where nginx is installed (``apt-get install nginx``; else that
  row is skipped with a note);
- mlflow's scoring server (``mlflow models serve --env-manager local``) of that model saved with
  ``mlflow.sklearn``. mlflow pins clash with this project's (numpy, gunicorn), so it runs from its own
  venv: ``--mlflow-python`` (default ``.venv-bench/bin/python``; ``--make-mlflow-venv`` creates it). Without
  it the mlflow rows are skipped with a note.
Every server gets the same number of workers on 127.0.0.1 and the same load: a fixed number of requests
from a fixed number of client threads, rounds interleaved. The client is raw sockets (one connection per
request, ``Connection: close``) so that it takes little of the CPUs the servers share with it.

    .venv/bin/python scripts/bench_serve.py [--requests 2000] [--concurrency 8] [--workers 2]

It prints figures and ratios (and each server's CPU time per request); it asserts nothing about timings.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import pickle
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
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from benchlib import rss_mb  # noqa: E402  scripts/, beside this file

from smlocal.algorithms import kmeans  # noqa: E402
from smlocal.artifacts.mxnet_ndarray import load_ndarrays  # noqa: E402
from smlocal.data.protobuf import dense_to_records  # noqa: E402
from smlocal.data.recordio import encode_records  # noqa: E402
from smlocal.environment import load_training_env  # noqa: E402
from smlocal.serving.front import nginx_wanted  # noqa: E402

MINIMAL, MLFLOW = "minimal flask+numpy", "mlflow models serve"
OURS, OURS_NGINX = "smlocal serve", "smlocal serve+nginx"
RATIO_TAGS = {OURS: "ours", OURS_NGINX: "ours+nginx"}  # ours -> its name in the ratio lines
DEFAULT_MLFLOW_PYTHON = REPO / ".venv-bench" / "bin" / "python"
# one BLAS thread per worker process for every server: workers x threads would oversubscribe the CPUs
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}

MINIMAL_APP = textwrap.dedent('''
    """Baseline: flask + numpy + scikit-learn's KMeans.predict, nothing else."""
    import io, json, os, pickle
    import flask
    import numpy as np

    with open(os.environ["BENCH_MODEL"], "rb") as f:
        MODEL = pickle.load(f)
    app = flask.Flask(__name__)

    @app.get("/ping")
    def ping():
        return ""

    @app.post("/invocations")
    def invocations():
        body = flask.request.get_data()
        if flask.request.content_type == "text/csv":
            X = np.loadtxt(io.BytesIO(body), delimiter=",", ndmin=2)
        else:
            X = np.array([i["features"] for i in json.loads(body)["instances"]], dtype=np.float64)
        labels = MODEL.predict(X)
        return flask.Response(json.dumps({"predictions": labels.tolist()}), content_type="application/json")
''')

# Run by mlflow's python: the same fit as ``fit_sklearn`` below, saved as an mlflow model.
MLFLOW_SAVE = textwrap.dedent('''
    import sys
    import numpy as np, mlflow.sklearn
    from sklearn.cluster import KMeans
    X, init = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
    mlflow.sklearn.save_model(KMeans(n_clusters=len(init), init=init, n_init=1).fit(X), sys.argv[3])
''')


def fit_sklearn(X: np.ndarray, init: np.ndarray):
    """float64, scikit-learn's own dtype (mlflow hands it pandas' float64 columns)."""
    from sklearn.cluster import KMeans
    return KMeans(n_clusters=len(init), init=init.astype(np.float64), n_init=1).fit(X.astype(np.float64))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def training_data(rng, k: int, dim: int, rows: int) -> np.ndarray:
    centers = rng.normal(size=(k, dim)) * 5
    return (centers[rng.integers(0, k, rows)] + rng.normal(size=(rows, dim))).astype(np.float32)


def train_smlocal(X: np.ndarray, k: int, base: Path) -> np.ndarray:
    """smlocal's k-means on ``X`` (File mode, RecordIO), as ``container/train`` runs it; its centers."""
    for sub in ("input/data/train", "input/config", "model", "output/data"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "input/data/train/part-000.rec").write_bytes(encode_records(dense_to_records(X)))
    config = base / "input" / "config"
    (config / "hyperparameters.json").write_text(json.dumps({"k": str(k), "feature_dim": str(X.shape[1])}))
    (config / "inputdataconfig.json").write_text(json.dumps(
        {"train": {"ContentType": "application/x-recordio-protobuf", "TrainingInputMode": "File"}}))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    logging.getLogger("smlocal").setLevel(logging.WARNING)
    with contextlib.redirect_stdout(io.StringIO()):  # its #metrics lines
        kmeans.train(load_training_env(base))
    return load_ndarrays(base / "model" / "model_algo-1")[0]


def start_ours(base: Path, workers: int, nginx: bool) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, **ONE_THREAD, "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_BIND_TO_PORT": str(port),
           "SMLOCAL_NGINX": "1" if nginx else "0",
           "SMLOCAL_BIND_HOST": "127.0.0.1", "MODEL_SERVER_WORKERS": str(workers), "SMLOCAL_LOG_LEVEL": "warning",
           "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, str(REPO / "container" / "serve")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


def start_minimal(tmp: Path, model, workers: int) -> tuple[subprocess.Popen, int]:
    (tmp / "minimal_app.py").write_text(MINIMAL_APP)
    (tmp / "kmeans.pkl").write_bytes(pickle.dumps(model))
    port = free_port()
    env = {**os.environ, **ONE_THREAD, "BENCH_MODEL": str(tmp / "kmeans.pkl")}
    cmd = [sys.executable, "-m", "gunicorn", "--chdir", str(tmp), "-w", str(workers), "-k", "sync",
           "-b", f"127.0.0.1:{port}", "--log-level", "warning", "minimal_app:app"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


def mlflow_missing(python: Path | None) -> str | None:
    """Why the mlflow peer cannot run, or None."""
    if python is None or not Path(python).exists():
        return f"no python at {python} (create it with --make-mlflow-venv, or pass --mlflow-python)"
    probe = subprocess.run([str(python), "-c", "import mlflow, sklearn; print(mlflow.__version__)"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"{python} cannot import mlflow and scikit-learn: {probe.stderr.strip().splitlines()[-1:]}"
    return None


def start_mlflow(python: Path, tmp: Path, X: np.ndarray, init: np.ndarray,
                 workers: int) -> tuple[subprocess.Popen, int]:
    np.save(tmp / "train.npy", X)
    np.save(tmp / "init.npy", init)
    subprocess.run([str(python), "-c", MLFLOW_SAVE, str(tmp / "train.npy"), str(tmp / "init.npy"),
                    str(tmp / "model")], check=True, capture_output=True, env={**os.environ, **ONE_THREAD})
    port = free_port()
    bin_dir = str(Path(python).parent)  # mlflow execs `uvicorn` from PATH
    env = {**os.environ, **ONE_THREAD, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    cmd = [str(Path(bin_dir) / "mlflow"), "models", "serve", "-m", str(tmp / "model"), "-h", "127.0.0.1",
           "-p", str(port), "-w", str(workers), "--env-manager", "local"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    return proc, port


def make_mlflow_venv(path: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", "mlflow>=2.10", "scikit-learn"],
                   check=True)


def request_bytes(port: int, body: bytes, content_type: str) -> bytes:
    head = (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
            f"Accept: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


def one_request(port: int, request: bytes) -> str | None:
    """Send ``request``, read the answer to EOF; None when it is a 200 with predictions, else what it was."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")) or not body.startswith(b'{"predictions"'):
        return head.split(b"\r\n", 1)[0].decode(errors="replace") or "empty answer"
    return None


def load(port: int, request: bytes, total: int, concurrency: int) -> dict:
    """``total`` POSTs from ``concurrency`` threads; latencies in seconds, wall time, failures."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def worker():
        local = []
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            t0 = time.perf_counter()
            try:
                failure = one_request(port, request)
            except OSError as exc:
                failure = repr(exc)
            local.append(time.perf_counter() - t0)
            if failure:
                failures.append(failure)
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "wall": time.perf_counter() - start, "failures": failures}


def cpu_seconds(proc: subprocess.Popen) -> float:
    """User + system CPU time of a server: its master and live workers."""
    try:
        root = psutil.Process(proc.pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def peak_rss_mb(proc: subprocess.Popen) -> float:
    """A server's peak RSS: each of its processes' own peak (master, workers, nginx) summed, in MB. Pages the
    workers share with the master (copy-on-write) count in each, so this is an upper bound."""
    try:
        root = psutil.Process(proc.pid)
        pids = [root.pid, *(p.pid for p in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return 0.0
    return sum(rss_mb("VmHWM", pid) for pid in pids)


def summarize(runs: list[dict], cpu: float) -> dict:
    lat = np.array([x for r in runs for x in r["latencies"]])
    wall = sum(r["wall"] for r in runs)
    return {"rps": len(lat) / wall, "p50": np.percentile(lat, 50) * 1e3, "p99": np.percentile(lat, 99) * 1e3,
            "failures": sum(len(r["failures"]) for r in runs), "cpu_ms": cpu / len(lat) * 1e3,
            "first_failure": next((r["failures"][0] for r in runs if r["failures"]), "")}


def payloads(rng, X: np.ndarray, rows: int) -> dict[str, dict[str, tuple[bytes, str]]]:
    """scenario -> server -> (body, content type): the same rows in each server's request format."""
    batch = X[rng.integers(0, len(X), rows)]
    csv_rows = "\n".join(",".join(repr(float(v)) for v in row) for row in batch)
    header = ",".join(f"f{i}" for i in range(X.shape[1]))  # mlflow reads CSV with pandas: a header line
    first = [float(v) for v in batch[0]]
    ours_json = json.dumps({"instances": [{"features": first}]}).encode()
    csv_body, mlflow_csv = csv_rows.encode(), f"{header}\n{csv_rows}".encode()
    mlflow_json = json.dumps({"inputs": [first]}).encode()
    return {  # both of ours and the minimal app read the built-ins' formats
        f"{rows}-row CSV": {**dict.fromkeys((OURS, OURS_NGINX, MINIMAL), (csv_body, "text/csv")),
                            MLFLOW: (mlflow_csv, "text/csv")},
        "1-row JSON": {**dict.fromkeys((OURS, OURS_NGINX, MINIMAL), (ours_json, "application/json")),
                       MLFLOW: (mlflow_json, "application/json")},
    }


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    ping = f"GET /ping HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                conn.sendall(ping)
                if conn.recv(64).startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
                    return
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not become ready")


def run_scenario(servers: dict, requests: dict, total: int, concurrency: int) -> dict[str, dict]:
    """Warm up each server, then two interleaved rounds (drift on a shared machine hits all alike)."""
    wire = {name: request_bytes(port, *requests[name]) for name, (_, port) in servers.items()}
    for name, (_, port) in servers.items():  # imports, first-request paths
        load(port, wire[name], 50, concurrency)
    runs: dict[str, list] = {name: [] for name in servers}
    cpu = dict.fromkeys(servers, 0.0)
    for _ in range(2):
        for name, (proc, port) in servers.items():
            before = cpu_seconds(proc)
            runs[name].append(load(port, wire[name], total // 2, concurrency))
            cpu[name] += cpu_seconds(proc) - before
    return {name: summarize(r, cpu[name]) for name, r in runs.items()}


def print_scenario(scenario: str, stats: dict[str, dict]) -> None:
    for name, s in stats.items():
        print(f"{scenario:<16} {name:<24} {s['rps']:>9.1f} {s['p50']:>8.2f} {s['p99']:>8.2f} "
              f"{s['cpu_ms']:>10.3f} {s['failures']:>7}" + (f"  ({s['first_failure']})" if s["failures"] else ""))
    for ours, tag in RATIO_TAGS.items():
        for peer, target in ((MINIMAL, "req/s >= 1.5x, p99 <= 1x"), (MLFLOW, "req/s > 1x")):
            if ours not in stats or peer not in stats:
                continue
            mine, base = stats[ours], stats[peer]
            label = f"ratio {tag}/{'minimal' if peer == MINIMAL else 'mlflow'}"
            print(f"{scenario:<16} {label:<24} {mine['rps'] / base['rps']:>8.2f}x "
                  f"{mine['p50'] / base['p50']:>7.2f}x {mine['p99'] / base['p99']:>7.2f}x "
                  f"{mine['cpu_ms'] / base['cpu_ms']:>9.2f}x   (target: {target})")
    print()


def start_servers(tmp: Path, args, X: np.ndarray, mlflow_python: Path | None, nginx: bool, procs: list) -> dict:
    """Train and start every server; name -> (process, port), ready to answer."""
    centers = train_smlocal(X, args.k, tmp / "opt_ml")
    model = fit_sklearn(X, centers)
    servers = {}
    for name, start in ((OURS, lambda: start_ours(tmp / "opt_ml", args.workers, nginx=False)),
                        (OURS_NGINX, lambda: start_ours(tmp / "opt_ml", args.workers, nginx=True)),
                        (MINIMAL, lambda: start_minimal(tmp, model, args.workers)),
                        (MLFLOW, lambda: start_mlflow(mlflow_python, tmp, X, centers, args.workers))):
        if (name == MLFLOW and mlflow_python is None) or (name == OURS_NGINX and not nginx):
            continue
        proc, port = start()
        procs.append(proc)
        servers[name] = (proc, port)
    for proc, port in servers.values():
        wait_ready(port, proc)
    return servers


def stop(procs: list) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per scenario and server (split in 2 rounds)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rows", type=int, default=100, help="rows per CSV request")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--train-rows", type=int, default=20_000)
    ap.add_argument("--mlflow-python", type=Path, default=DEFAULT_MLFLOW_PYTHON,
                    help="a python with mlflow and scikit-learn (default: .venv-bench/bin/python)")
    ap.add_argument("--no-mlflow", action="store_true", help="skip the mlflow peer")
    ap.add_argument("--make-mlflow-venv", action="store_true", help="create .venv-bench with mlflow first")
    args = ap.parse_args(argv)

    if args.make_mlflow_venv:
        make_mlflow_venv(DEFAULT_MLFLOW_PYTHON.parent.parent)
    mlflow_python = None if args.no_mlflow else args.mlflow_python
    missing = "--no-mlflow" if args.no_mlflow else mlflow_missing(mlflow_python)
    if missing:
        print(f"note: the mlflow peer is skipped: {missing}\n")
        mlflow_python = None
    nginx = nginx_wanted() is not None  # as serve decides: installed, and SMLOCAL_NGINX is not 0
    if not nginx:
        print(f"note: '{OURS_NGINX}' (the images' setup) is skipped: nginx is not installed (apt-get install nginx) "
              "or SMLOCAL_NGINX=0\n")
    rng = np.random.default_rng(0)
    X = training_data(rng, args.k, args.dim, args.train_rows)
    scenarios = payloads(rng, X, args.rows)
    procs: list = []
    with tempfile.TemporaryDirectory(prefix="bench_serve_") as tmp_name:
        try:
            servers = start_servers(Path(tmp_name), args, X, mlflow_python, nginx, procs)
            print(f"{args.workers} workers each (minimal: gunicorn sync, smlocal: gunicorn sync + slow lane, "
                  f"smlocal+nginx: gunicorn sync, mlflow: "
                  f"uvicorn), {args.concurrency} client threads, {args.requests} requests per scenario and server, "
                  f"k={args.k}, d={args.dim}, {os.cpu_count()} CPUs (client and servers share them)\n")
            print(f"{'scenario':<16} {'server':<24} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>10} "
                  f"{'failed':>7}")
            for scenario, requests in scenarios.items():
                print_scenario(scenario, run_scenario(servers, requests, args.requests, args.concurrency))
            for name, (proc, _) in servers.items():
                print(f"peak RSS {name:<24} {peak_rss_mb(proc):>7.0f} MB (its processes' peaks summed)")
        finally:
            stop(procs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
