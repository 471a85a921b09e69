"""container/serve as a real gunicorn on a free loopback port, driven by the sagemaker SDK's own
serializers and deserializers, answering for the AWS built-ins' own artifacts."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests
from sagemaker.deserializers import CSVDeserializer, JSONDeserializer, JSONLinesDeserializer, RecordDeserializer
from sagemaker.serializers import CSVSerializer, JSONLinesSerializer, JSONSerializer, RecordSerializer

from smlocal.artifacts.kmeans import KMeansModel, dumps_kmeans
from tests.helpers import CONTAINER, STALLED_REQUESTS, Server, free_port, read_until_ready

RNG = np.random.default_rng(2024)


def serve_model(tmp_path: Path, name: str, files: dict[str, Path | bytes], env=None) -> Server:
    base = tmp_path / name
    (base / "model").mkdir(parents=True)
    for target, source in files.items():
        if isinstance(source, bytes):
            (base / "model" / target).write_bytes(source)
        else:
            shutil.copy(source, base / "model" / target)
    return Server(base, env).wait_ready()


@contextlib.contextmanager
def running(tmp_path, name, files, env=None):
    server = serve_model(tmp_path, name, files, env)
    try:
        yield server
    finally:
        code = server.stop()
        assert code == 0, server.output()


# ---------------------------------------------------------------- answer extraction per wire format
def from_records(records, keys):
    return [[list(r.label[k].float32_tensor.values) for k in keys] for r in records]


def kmeans_answers(server, X):
    """The (closest_cluster, distance) pairs through the three SDK serializer/deserializer pairs."""
    recs = server.invoke(X, RecordSerializer(), RecordDeserializer())
    a = [(c[0], d[0]) for c, d in from_records(recs, ["closest_cluster", "distance_to_cluster"])]
    preds = server.invoke(X, CSVSerializer(), JSONDeserializer())["predictions"]
    b = [(p["closest_cluster"], p["distance_to_cluster"]) for p in preds]
    lines = server.invoke([{"features": row.tolist()} for row in X], JSONLinesSerializer(), JSONLinesDeserializer())
    c = [(p["closest_cluster"], p["distance_to_cluster"]) for p in lines]
    sparse = {"instances": [{"data": {"features": {"keys": list(range(len(row))), "shape": [len(row)],
                                                   "values": row.tolist()}}} for row in X]}
    d = [(float(c), float(v)) for c, v in server.invoke(sparse, JSONSerializer(), CSVDeserializer())]
    return a, b, c, d


def nearest(centers, X):
    d = np.sqrt(((X[:, None, :].astype(np.float64) - centers[None].astype(np.float64)) ** 2).sum(-1))
    return d.argmin(1), d.min(1)


KMEANS_FIXTURES = ["kmeans-popseg-zomma2", "kmeans-popseg-ahmed-gaal", "kmeans-ufo-labs", "kmeans-census-iris9112"]


@pytest.mark.parametrize("folder", KMEANS_FIXTURES)
def test_aws_kmeans_artifacts(fixtures_dir, tmp_path, folder):
    from smlocal.artifacts.loader import load_model_dir

    centers = load_model_dir(fixtures_dir / folder).centers
    replay_path = fixtures_dir / folder / "replay.json"
    replay = json.loads(replay_path.read_text()) if replay_path.exists() else None
    X = (centers[RNG.integers(0, len(centers), 20)] + RNG.normal(size=(20, centers.shape[1])) * centers.std(0))
    X = X.astype(np.float32)
    with running(tmp_path, folder, {"model.tar.gz": fixtures_dir / folder / "model.tar.gz"}) as server:
        want_idx, want_dist = nearest(centers, X)
        for answers in kmeans_answers(server, X):
            assert [a[0] for a in answers] == want_idx.astype(float).tolist()
            np.testing.assert_allclose([a[1] for a in answers], want_dist, rtol=1e-5)
        if replay:
            pair = replay["exact_pairs"][0]
            for answers in kmeans_answers(server, np.array([pair["features"]], np.float32)):
                assert answers[0][0] == pair["expected"]["closest_cluster"]
                assert answers[0][1] == pytest.approx(pair["expected"]["distance_to_cluster"], rel=1e-6)
            rows = replay["label_only_rows"]
            preds = server.invoke(np.array([r["features"] for r in rows]), CSVSerializer(), JSONDeserializer())
            assert [p["closest_cluster"] for p in preds["predictions"]] == [float(r["closest_cluster"]) for r in rows]


# ---------------------------------------------------------------- linear learner vs MXNet
def mxnet_scores(model_algo_1: bytes, X: np.ndarray, workdir: Path) -> np.ndarray:
    mx = pytest.importorskip("mxnet")
    workdir.mkdir(parents=True, exist_ok=True)
    zipfile.ZipFile(io.BytesIO(model_algo_1)).extractall(workdir)
    mod = mx.mod.Module.load(str(workdir / "mx-mod"), 0)
    mod.bind(data_shapes=[("data", X.shape)], for_training=False)
    mod.forward(mx.io.DataBatch([mx.nd.array(X)]), is_train=False)
    return mod.get_outputs()[0].asnumpy()[:, 0]


def member(tgz: Path) -> bytes:
    with tarfile.open(tgz) as tar:
        return tar.extractfile("model_algo-1").read()


def test_aws_linear_learner_artifacts_score_like_mxnet(fixtures_dir, tmp_path):
    adult_tgz = fixtures_dir / "ll-binary-adult-aws" / "ll-adult-prediction-model.tar.gz"
    replay = [json.loads(x) for x in
              (fixtures_dir / "ll-binary-adult-aws" / "replay_batch_transform.jsonl").read_text().splitlines()]
    cases = [
        ("adult", {"model.tar.gz": adult_tgz}, member(adult_tgz),
         np.array([r["features"] for r in replay[:60]], np.float32)),
        ("covid", {"model_algo-1": fixtures_dir / "ll-regressor-covid" / "model_algo-1"},
         (fixtures_dir / "ll-regressor-covid" / "model_algo-1").read_bytes(),
         RNG.normal(size=(10, 513)).astype(np.float32)),
        ("mcv", {"model_algo-1": fixtures_dir / "ll-binary-mcv" / "model_algo-1"},
         (fixtures_dir / "ll-binary-mcv" / "model_algo-1").read_bytes(), RNG.normal(size=(25, 5)).astype(np.float32)),
    ]
    for name, files, raw, X in cases:
        want = mxnet_scores(raw, X, tmp_path / f"mx-{name}")
        with running(tmp_path, name, files) as server:
            recs = server.invoke(X, RecordSerializer(), RecordDeserializer())
            by_record = np.array([r.label["score"].float32_tensor.values[0] for r in recs])
            by_json = np.array([p["score"] for p in server.invoke(X, CSVSerializer(), JSONDeserializer())["predictions"]])
            lines = server.invoke([{"features": row.tolist()} for row in X], JSONLinesSerializer(),
                                  JSONLinesDeserializer())
            by_lines = np.array([p["score"] for p in lines])
            for got in (by_record, by_json, by_lines):
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)
            if name == "adult":  # and the labels AWS's batch transform printed
                assert [p["predicted_label"] for p in lines] == [r["predicted_label"] for r in replay[:60]]
                np.testing.assert_allclose(by_json, [r["score"] for r in replay[:60]], atol=1e-6)


# ---------------------------------------------------------------- bad requests, live
def test_bad_requests_never_take_the_server_down(tmp_path):
    centers = np.array([[0, 0, 0], [1, 1, 1]], np.float32)
    files = {"model_algo-1": dumps_kmeans(KMeansModel(centers))}
    with running(tmp_path, "bad", files, env={"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"}) as server:
        url = server.url + "/invocations"
        params = requests.get(server.url + "/execution-parameters", timeout=5).json()
        assert params == {"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 1}
        ping = requests.get(server.url + "/ping", timeout=5)
        assert ping.status_code == 200 and ping.content == b""
        cases = [
            ({"Content-Type": "image/jpeg"}, b"1,1,1", 415, "application/x-recordio-protobuf"),
            ({"Content-Type": "text/csv", "Accept": "application/xml"}, b"1,1,1", 415, "accept one of"),
            ({"Content-Type": "text/csv"}, b"1,1,1\n2,2,two", 400,
             "unable to evaluate payload provided: row 2, column 3: 'two' is not a number"),
            ({"Content-Type": "application/json"}, b'{"instances": [{"features": [1, 1]}]}', 400,
             "the model expects 3 features per record, got 2"),
            ({"Content-Type": "application/x-recordio-protobuf"}, b"\x0a\x23\xd7\xce\x10\x00\x00\x00junk", 400,
             "unable to evaluate payload provided"),
            ({"Content-Type": "text/csv"}, b"", 400, "the request body is empty"),
            ({"Content-Type": "text/csv"}, b"0.5," * (300 * 1024) + b"1", 413, "over the 1 MB limit"),
        ]
        for headers, body, status, text in cases:
            resp = requests.post(url, data=body, headers=headers, timeout=30)
            assert resp.status_code == status, (headers, resp.text)
            assert text in resp.text
            good = requests.post(url, data=b"1,1,1.5", headers={"Content-Type": "text/csv"}, timeout=10)
            assert good.status_code == 200
            assert good.json() == {"predictions": [{"closest_cluster": 1.0, "distance_to_cluster": 0.5}]}
        # a chunked upload (no Content-Length) over the limit is refused too
        chunks = (b"1,1,1\n" * 20000 for _ in range(10))
        resp = requests.post(url, data=chunks, headers={"Content-Type": "text/csv"}, timeout=30)
        assert resp.status_code == 413
        assert requests.post(url, data=b"0,0,0", headers={"Content-Type": "text/csv"}, timeout=10).status_code == 200


def test_sigterm_finishes_the_request_in_flight_and_exits_0(tmp_path):
    files = {"model_algo-1": dumps_kmeans(KMeansModel(np.zeros((2, 2), np.float32)))}
    server = serve_model(tmp_path, "term", files)
    body = b"3,4\n" * 1000
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    head = (f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nAccept: text/csv\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    sock.sendall(head + body[:100])
    time.sleep(1.0)  # a worker has accepted the connection and is reading the body
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    sock.sendall(body[100:])
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    sock.close()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert reply.endswith(b"0.0,5.0\n")
    assert server.stop() == 0, server.output()
    assert "Handling signal: term" in server.output()


def test_unloadable_model_exits_non_zero_naming_the_file(tmp_path):
    base = tmp_path / "broken"
    (base / "model").mkdir(parents=True)
    (base / "model" / "model_algo-1").write_bytes(b"definitely not a model")
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_BIND_TO_PORT": str(free_port()),
           "SMLOCAL_BIND_HOST": "127.0.0.1"}
    proc = subprocess.run([sys.executable, str(CONTAINER / "serve")], env=env, capture_output=True, text=True,
                          timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert f"Customer Error: Cannot load the model file {base / 'model' / 'model_algo-1'}" in out
    assert "Listening at" not in out

    (base / "model" / "model_algo-1").unlink()
    proc = subprocess.run([sys.executable, str(CONTAINER / "serve")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0 and f"No model in {base / 'model'}" in proc.stdout + proc.stderr


# ---------------------------------------------------------------- slow clients, shared resources, exit codes
def stall(port: int, head: bytes) -> socket.socket:
    """A client that sends ``head`` and then nothing: partial headers, or a body short of its Content-Length."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head)
    return sock


@pytest.mark.parametrize("front", ["gunicorn", "nginx"])
def test_stalled_clients_do_not_stall_ping(tmp_path, front):
    """More stalled connections than workers: /ping still answers within SageMaker's 2 s, predictions too.
    gunicorn alone (threads, read timeouts), and behind nginx where it is installed (as in the images)."""
    if front == "nginx" and shutil.which("nginx") is None:
        pytest.skip("nginx is not installed here; tests/container/test_image.py runs it in the image")
    files = {"model_algo-1": dumps_kmeans(KMeansModel(np.zeros((2, 3), np.float32)))}
    env = {"SMLOCAL_NGINX": "0" if front == "gunicorn" else "1"}
    with running(tmp_path, "stall", files, env=env) as server:  # 2 workers
        count = 20 if front == "nginx" else 6
        stalled = [stall(server.port, STALLED_REQUESTS[i % len(STALLED_REQUESTS)]) for i in range(count)]
        try:
            time.sleep(0.5)  # the server has taken every stalled connection
            for _ in range(3):
                started = time.monotonic()
                assert requests.get(server.url + "/ping", timeout=10).status_code == 200
                assert time.monotonic() - started < 2.0
                good = requests.post(server.url + "/invocations", data=b"0,0,0", timeout=10,
                                     headers={"Content-Type": "text/csv"})
                assert good.status_code == 200, good.text
        finally:
            for sock in stalled:
                sock.close()


@pytest.mark.parametrize("front", ["gunicorn", "nginx"])
def test_a_worker_that_ends_leaves_the_server_whole_and_a_stop_is_prompt(tmp_path, front):
    """A worker's exit must not run the master's cleanup: it once stopped nginx and deleted the socket's
    directory (the endpoint died after any worker restart) and made every stop wait 10 s."""
    if front == "nginx" and shutil.which("nginx") is None:
        pytest.skip("nginx is not installed here; tests/container/test_image.py runs it in the image")
    import psutil

    files = {"model_algo-1": dumps_kmeans(KMeansModel(np.zeros((2, 3), np.float32)))}
    server = serve_model(tmp_path, "restart", files, env={"SMLOCAL_NGINX": "0" if front == "gunicorn" else "1"})
    try:
        deadline = time.monotonic() + 20
        while len(workers := [p for p in psutil.Process(server.proc.pid).children() if "nginx" not in p.name()]) < 2:
            assert time.monotonic() < deadline, workers  # the second worker may still be booting
            time.sleep(0.1)
        workers[0].send_signal(signal.SIGTERM)  # a graceful worker exit, as after a timeout or max_requests
        workers[0].wait(10)
        time.sleep(1)  # the master forks its replacement
        for _ in range(5):
            good = requests.post(server.url + "/invocations", data=b"0,0,0", timeout=10,
                                 headers={"Content-Type": "text/csv"})
            assert good.status_code == 200, good.text
    finally:
        started = time.monotonic()
        code = server.stop()
    assert code == 0 and time.monotonic() - started < 5.0, server.output()
    assert "Traceback" not in server.output() and "exited with code" not in server.output(), server.output()


def test_a_client_that_stops_sending_its_body_gets_a_408_and_the_server_goes_on(tmp_path):
    files = {"model_algo-1": dumps_kmeans(KMeansModel(np.zeros((2, 3), np.float32)))}
    env = {"SMLOCAL_NGINX": "0", "SMLOCAL_CLIENT_READ_TIMEOUT": "1"}
    with running(tmp_path, "timeout", files, env=env) as server:
        sock = stall(server.port, STALLED_REQUESTS[1])  # a body 998 bytes short of its Content-Length
        reply = b""
        try:
            while chunk := sock.recv(4096):  # the server answers, then closes (headers and body may come apart)
                reply += chunk
        finally:
            sock.close()
        assert reply.startswith(b"HTTP/1.1 408"), reply
        assert b"did not arrive in full" in reply and b"Content-Length" in reply, reply
        good = requests.post(server.url + "/invocations", data=b"0,0,0", timeout=10,
                             headers={"Content-Type": "text/csv"})
        assert good.status_code == 200, good.text


def test_no_control_socket_in_home(tmp_path):
    """Every endpoint on a machine would share gunicorn's ~/.gunicorn/gunicorn.ctl (gunicorn >= 25.1)."""
    home = tmp_path / "home"
    home.mkdir()
    files = {"model_algo-1": dumps_kmeans(KMeansModel(np.zeros((2, 2), np.float32)))}
    env = {"HOME": str(home), "XDG_RUNTIME_DIR": ""}
    with running(tmp_path, "ctl", files, env=env):
        assert not list(home.rglob("*.ctl"))


def kmeans_model_dir(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model_algo-1").write_bytes(dumps_kmeans(KMeansModel(np.zeros((2, 2), np.float32))))
    return model


def smlocal_serve_process(model: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "smlocal", "serve", "--model", str(model), "--port", str(port),
                             "--workers", "1", "--backend", "process"], cwd=model.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_serves_on_one_port_only_one_is_ready(tmp_path):
    """Both pass the free-port check before either binds; only the one whose own server answers is ready."""
    model, port = kmeans_model_dir(tmp_path), free_port()
    procs = [smlocal_serve_process(model, port) for _ in range(2)]
    try:
        loser = None
        deadline = time.monotonic() + 90
        while loser is None and time.monotonic() < deadline:
            loser = next((p for p in procs if p.poll() is not None), None)
            time.sleep(0.2)
        assert loser is not None, "neither smlocal serve gave up"
        loser_out = loser.stdout.read()
        assert loser.returncode != 0 and "endpoint ready" not in loser_out, loser_out
        assert "before answering /ping" in loser_out, loser_out
        winner = next(p for p in procs if p is not loser)
        assert winner.poll() is None
        assert requests.get(f"http://127.0.0.1:{port}/ping", timeout=5).status_code == 200
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait(60)


def test_smlocal_serve_exits_0_when_its_server_stops_cleanly(tmp_path):
    psutil = pytest.importorskip("psutil")
    proc = smlocal_serve_process(kmeans_model_dir(tmp_path), free_port())
    try:
        lines = read_until_ready(proc)
        master = psutil.Process(proc.pid).children()[0]  # container/serve: the gunicorn master
        master.send_signal(signal.SIGTERM)
        out = proc.stdout.read()
        assert proc.wait(60) == 0, "".join(lines) + out
        assert "exited with code 0" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
