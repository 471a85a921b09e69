"""A serving soak: a real ``smlocal serve`` on loopback takes a bounded mix of good, bad, oversized and
stalled requests; no answer is a 5xx, /ping answers within SageMaker's 2 s throughout, and the server's
memory stays flat."""
from __future__ import annotations

import concurrent.futures
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests

from smlocal.artifacts.kmeans import KMeansModel, dumps_kmeans
from tests.helpers import REPO, STALLED_REQUESTS, free_port, read_until_ready

psutil = pytest.importorskip("psutil")

CLIENTS = 6
REQUESTS_PER_CLIENT = 300
WARM_UP_PER_CLIENT = 150
MAX_STALLED = 6  # open at once: more than the server's 2 workers
DEADLINE_S = 60
PING_LIMIT_S = 2.0
RSS_GROWTH_LIMIT = 0.10
DEPTH = 100_000


def request_mix():
    """(method, body, headers, the statuses it may get); cycled through by every client."""
    csv = {"Content-Type": "text/csv"}
    good_json = json.dumps({"instances": [{"features": [1, 2, 3]}] * 20}).encode()
    return [
        (b"1,2,3\n4,5,6\n" * 50, csv, {200}),
        (good_json, {"Content-Type": "application/json", "Accept": "application/jsonlines"}, {200}),
        (b"1,2,three\n", csv, {400}),
        (b'{"instances": ' + b"[" * DEPTH + b"]" * DEPTH + b"}", {"Content-Type": "application/json"}, {400}),
        (b"\x0a\x23\xd7\xce\x10\x00\x00\x00junk", {"Content-Type": "application/x-recordio-protobuf"}, {400}),
        (b"1,2,3", {"Content-Type": "image/png"}, {415}),
        (b"0.5," * (300 * 1024) + b"1", csv, {413}),  # over the 1 MB limit set below
        (b"1,2,3", {"Content-Type": "text/csv", "Accept": "application/xml"}, {415}),
    ]


def tree_rss(pid: int) -> int:
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


@pytest.fixture
def endpoint(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    rng = np.random.default_rng(3)
    (model / "model_algo-1").write_bytes(dumps_kmeans(KMeansModel(rng.normal(size=(8, 3)).astype(np.float32))))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "smlocal", "serve", "--model", str(model), "--port", str(port),
                             "--workers", "2", "--backend", "process", "--env", "SAGEMAKER_MAX_PAYLOAD_IN_MB=1"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = read_until_ready(proc)
    threading.Thread(target=lambda: [lines.append(x) for x in proc.stdout], daemon=True).start()
    yield port, proc, lines
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0, "".join(lines[-40:])


class Pinger(threading.Thread):
    """GET /ping every 0.05 s; the slowest answer, and any that failed."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.slowest, self.failures, self.count = url, 0.0, [], 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            started = time.monotonic()
            try:
                status = requests.get(self.url, timeout=5).status_code
                if status != 200:
                    self.failures.append(status)
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.count += 1


def staller(port: int, stop: threading.Event, slots: threading.Semaphore, n: int, all_open: threading.Barrier) -> int:
    """Opens stalled connections (at most MAX_STALLED at once), each held for 1-3 s; how many it opened.
    The first one is open before any client starts (``all_open``), so the clients always meet MAX_STALLED
    stalled connections, however fast the server answers them."""
    opened = 0
    while not stop.is_set():
        with slots:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(STALLED_REQUESTS[(n + opened) % len(STALLED_REQUESTS)])
                opened += 1
                if opened == 1:
                    all_open.wait(10)
                stop.wait(1 + (opened % 3))
    return opened


def client(url: str, mix, deadline: float, seed: int, count: int = REQUESTS_PER_CLIENT) -> list[tuple[int, set, str]]:
    got = []
    with requests.Session() as session:
        for i in range(count):
            if time.monotonic() > deadline:
                break
            body, headers, expected = mix[(i + seed) % len(mix)]
            resp = session.post(url, data=body, headers=headers, timeout=30)
            got.append((resp.status_code, expected, resp.text[:200]))
    return got


def phase(port: int, mix, per_client: int, seconds: float) -> tuple[list, int]:
    """CLIENTS clients sending the mix while stallers hold up to MAX_STALLED connections: (answers, stalls)."""
    url, stop = f"http://127.0.0.1:{port}/invocations", threading.Event()
    slots, all_open = threading.Semaphore(MAX_STALLED), threading.Barrier(MAX_STALLED + 1)
    with concurrent.futures.ThreadPoolExecutor(CLIENTS + MAX_STALLED) as pool:
        stallers = [pool.submit(staller, port, stop, slots, n, all_open) for n in range(MAX_STALLED)]
        all_open.wait(10)
        deadline = time.monotonic() + seconds
        clients = [pool.submit(client, url, mix, deadline, n, per_client) for n in range(CLIENTS)]
        answers = [a for c in clients for a in c.result()]
        stop.set()
        return answers, sum(s.result() for s in stallers)


@pytest.mark.timeout(180)
def test_soak_mixed_requests(endpoint):
    port, proc, lines = endpoint
    mix = request_mix()
    # the same load once first, so every server thread and malloc arena exists before memory is measured
    warm, _ = phase(port, mix, WARM_UP_PER_CLIENT, 30)
    assert all(status in expected for status, expected, _ in warm), warm[:5]
    master = psutil.Process(proc.pid).children()[0]
    rss_before = tree_rss(master.pid)

    pinger = Pinger(f"http://127.0.0.1:{port}/ping")
    pinger.start()
    answers, stalled = phase(port, mix, REQUESTS_PER_CLIENT, DEADLINE_S)
    pinger.done.set()
    pinger.join(10)
    rss_after = tree_rss(master.pid)

    growth = rss_after / rss_before - 1
    print(f"\nSOAK: {len(answers)} requests, {stalled} stalled connections, {pinger.count} pings "
          f"(slowest {pinger.slowest:.3f} s), RSS {rss_before / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB "
          f"({growth:+.1%})")
    assert len(answers) >= CLIENTS * REQUESTS_PER_CLIENT // 2, len(answers)
    assert stalled >= MAX_STALLED
    server_errors = [a for a in answers if a[0] >= 500]
    assert not server_errors, server_errors[:5]
    unexpected = [a for a in answers if a[0] not in a[1]]
    assert not unexpected, unexpected[:5]
    assert not pinger.failures and pinger.count >= 5, (pinger.count, pinger.failures[:5])
    assert pinger.slowest < PING_LIMIT_S, pinger.slowest
    assert growth < RSS_GROWTH_LIMIT, (rss_before, rss_after)
