"""The multi-host pieces that need no MXNet: cluster settings, the liveness monitor over real loopback
sockets, the one-host cluster, roles dying with their parent, and the merged linear-learner statistics
(several hosts simulated by threads that sum their arrays, so the merge is checked against one host
holding all the rows)."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.algorithms.cluster.monitor import Coordinator, Failure, MonitorClient
from smlocal.algorithms.cluster.kvstore import Cluster, _peer_error, cluster_settings
from smlocal.algorithms.linear_learner.config import resolve
from smlocal.algorithms.linear_learner.losses import Logistic
from smlocal.algorithms.linear_learner.model import EpochStats, ParallelLinear, PreparedBatch
from smlocal.algorithms.linear_learner.optim import ParallelOptimizer
from smlocal.algorithms.linear_learner.scaler import fit_scaler
from smlocal.algorithms.linear_learner.selection import criterion_for
from smlocal.algorithms.linear_learner.spread import spread
from smlocal.algorithms.linear_learner.state import start_state
from smlocal.algorithms.linear_learner.sync import GradientSync, merge_stats
from smlocal.errors import AlgorithmError, CustomerError, PlatformError
from tests.helpers import process_alive

HOSTS = ("algo-1", "algo-2", "algo-3")


# ------------------------------------------------------------------------------------------ settings


def test_settings_default_to_the_first_host_and_port_9000():
    s = cluster_settings(HOSTS, "algo-2", {}, resolve=lambda name: {"algo-1": "10.0.0.7"}[name], interface="eth1")
    assert (s.root_uri, s.root_port, s.monitor_port, s.timeout, s.rank, s.size) == ("10.0.0.7", 9000, 9001, 30.0, 1, 3)
    assert s.dmlc_env("worker") == {"DMLC_ROLE": "worker", "DMLC_PS_ROOT_URI": "10.0.0.7", "DMLC_PS_ROOT_PORT": "9000",
                                    "DMLC_NUM_SERVER": "1", "DMLC_NUM_WORKER": "3", "DMLC_INTERFACE": "eth1"}


def test_loopback_settings_pin_the_node_address():
    env = {"DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": "41000", "SMLOCAL_KV_TIMEOUT": "2.5"}
    s = cluster_settings(HOSTS[:2], "algo-1", env, resolve=lambda name: pytest.fail("no lookup for a given URI"))
    assert (s.root_port, s.monitor_port, s.timeout, s.loopback) == (41000, 41001, 2.5, True)
    role = s.dmlc_env("scheduler")
    assert role["DMLC_ROLE"] == "scheduler" and role["DMLC_NODE_HOST"] == "127.0.0.1" and role["DMLC_INTERFACE"] == "lo"
    assert role["DMLC_NUM_WORKER"] == "2" and role["DMLC_NUM_SERVER"] == "1"


def test_a_root_host_name_is_resolved_to_its_address():
    s = cluster_settings(HOSTS[:2], "algo-2", {"DMLC_PS_ROOT_URI": "localhost"})
    assert s.root_uri == "127.0.0.1" and s.loopback and s.dmlc_env("worker")["DMLC_INTERFACE"] == "lo"


@pytest.mark.parametrize("env, name", [
    ({"SMLOCAL_KV_TIMEOUT": "soon"}, "SMLOCAL_KV_TIMEOUT"),
    ({"SMLOCAL_KV_TIMEOUT": "-1"}, "SMLOCAL_KV_TIMEOUT"),
    ({"DMLC_PS_ROOT_PORT": "70000"}, "DMLC_PS_ROOT_PORT"),
    ({"SMLOCAL_KV_MONITOR_PORT": "9000"}, "SMLOCAL_KV_MONITOR_PORT"),
])
def test_bad_settings_name_the_variable(env, name):
    with pytest.raises(CustomerError, match=name):
        cluster_settings(HOSTS, "algo-1", {"DMLC_PS_ROOT_URI": "127.0.0.1", **env})


def test_a_current_host_outside_the_hosts_is_a_customer_error():
    with pytest.raises(CustomerError, match="current_host 'algo-9'"):
        cluster_settings(HOSTS, "algo-9", {"DMLC_PS_ROOT_URI": "127.0.0.1"})


def test_an_unresolvable_first_host_says_what_to_set():
    def fail(name):
        raise OSError("Name or service not known")

    with pytest.raises(PlatformError, match="DMLC_PS_ROOT_URI"):
        cluster_settings(HOSTS, "algo-2", {}, resolve=fail)


def test_a_peer_failure_keeps_its_class_and_names_the_host():
    err = _peer_error(Failure("failed", "algo-2", "Customer Error: No training data found in channel 'train'."))
    assert isinstance(err, CustomerError) and str(err) == "host algo-2 failed: No training data found in channel 'train'."
    assert type(_peer_error(Failure("lost", "algo-3", "lost contact with host algo-3."))) is AlgorithmError


def test_the_one_host_cluster_is_the_identity():
    c = Cluster(("algo-1",), "algo-1")
    assert (c.size, c.rank, c.is_first, c.store_type) == (1, 0, True, "local")
    assert c.allreduce_sum(np.array([1, 2])).dtype == np.int64
    assert c.allreduce_sum(np.ones(2, np.float32)).dtype == np.float32
    assert c.allgather(np.array([3.0])).tolist() == [[3.0]]
    assert c.gather_rows(np.arange(3)).tolist() == [0, 1, 2] and c.broadcast(np.array([5.0])).tolist() == [5.0]
    with c:  # close and barrier are no-ops
        c.barrier()


# ------------------------------------------------------------------------------------------ monitor


class _Host:
    def __init__(self, name: str, port: int, timeout: float = 5.0):
        self.failures: queue.Queue = queue.Queue()
        self.client = MonitorClient(name, "127.0.0.1", port, timeout, HOSTS[0], on_failure=self.failures.put)

    def failure(self, within: float = 5.0) -> Failure:
        return self.failures.get(timeout=within)


@pytest.fixture
def coordinator():
    started = []

    def start(hosts=HOSTS, timeout=5.0):
        c = Coordinator(hosts, 0, timeout, bind="127.0.0.1").start()
        started.append(c)
        return c

    yield start
    for c in started:
        c.close(timeout=0.5)


def _joined(coordinator: Coordinator, *hosts: _Host) -> None:
    for host in hosts:
        host.client.connect()
    deadline = time.monotonic() + 5
    while len(coordinator.ops) < len(hosts):
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_heartbeats_share_every_hosts_progress(coordinator):
    c = coordinator()
    hosts = [_Host(h, c.port) for h in HOSTS]
    _joined(c, *hosts)
    hosts[1].client.heartbeat(7)
    deadline = time.monotonic() + 5
    while hosts[0].client.peer_ops.get("algo-2") != 7:
        assert time.monotonic() < deadline, hosts[0].client.peer_ops
        time.sleep(0.05)
    assert hosts[2].client.silent_for() < 2
    for h in hosts:
        h.client.goodbye()
        h.client.close()
    assert all(h.failures.empty() for h in hosts)


def test_a_host_that_disappears_is_reported_to_the_others_at_once(coordinator):
    c = coordinator()
    hosts = [_Host(h, c.port) for h in HOSTS]
    _joined(c, *hosts)
    started = time.monotonic()
    hosts[1].client._sock.close()  # like a killed process: no goodbye
    for h in (hosts[0], hosts[2]):
        f = h.failure()
        assert (f.kind, f.host) == ("lost", "algo-2") and "lost contact with host algo-2" in f.message
    assert time.monotonic() - started < 2


def test_a_failing_host_s_reason_is_relayed(coordinator):
    c = coordinator()
    hosts = [_Host(h, c.port) for h in HOSTS]
    _joined(c, *hosts)
    hosts[2].client.report_failure("Customer Error: bad data on algo-3", wait=2.0)
    for h in hosts[:2]:
        assert h.failure() == Failure("failed", "algo-3", "Customer Error: bad data on algo-3")
    assert hosts[2].failures.empty()  # it knows why it fails


def test_hosts_that_never_join_are_named_after_the_timeout(coordinator):
    c = coordinator(timeout=0.6)
    first = _Host("algo-1", c.port)
    _joined(c, first)
    f = first.failure(within=5)
    assert f.kind == "not_joined" and f.message.startswith("hosts algo-2, algo-3 did not join the cluster within 0.6 s")


def test_losing_the_first_host_is_reported_by_the_client(coordinator):
    c = coordinator()
    hosts = [_Host(h, c.port) for h in HOSTS[:2]]
    _joined(c, *hosts)
    c._stop.set()  # the coordinator's process is gone: its sockets close without a word
    f = hosts[1].failure()
    assert f.kind == "lost" and f.host == "algo-1" and "the first host" in f.message


def test_an_unreachable_first_host_fails_within_the_timeout():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        client = MonitorClient("algo-2", "127.0.0.1", port, 0.5, "algo-1", on_failure=lambda f: None)
        started = time.monotonic()
        with pytest.raises(ConnectionError, match=f"could not reach the first host algo-1 at 127.0.0.1:{port}"):
            client.connect()
        assert time.monotonic() - started < 3


def test_kvstore_roles_die_with_their_parent(tmp_path):
    """The scheduler/server guard: a process that called _die_with_parent is killed with its parent."""
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", f"""
import os, subprocess, sys, time
code = "from smlocal.algorithms.cluster.kvstore import _die_with_parent; _die_with_parent({{}}); import time; time.sleep(60)"
child = subprocess.Popen([sys.executable, "-c", code.format(os.getpid())])
open({str(pid_file)!r}, "w").write(str(child.pid))
time.sleep(60)
"""])
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int(pid_file.read_text())
    time.sleep(1.0)  # let the child set PR_SET_PDEATHSIG
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 5
    while process_alive(child):
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------ merged statistics


class _Group:
    """n hosts as threads: ``allreduce_sum`` adds the arrays of all of them (what dist_sync does)."""

    def __init__(self, n: int):
        self.n = n
        self._barrier = threading.Barrier(n)
        self._slots: list = [None] * n

    def member(self, rank: int) -> Cluster:
        group = self

        class Member(Cluster):
            def allreduce_sum(self, array):
                group._slots[rank] = np.asarray(array)
                group._barrier.wait()
                total = sum(np.asarray(s, dtype=np.float64) for s in group._slots)
                group._barrier.wait()
                return total.astype(np.float32) if np.asarray(array).dtype == np.float32 else total

        return Member(tuple(f"algo-{i + 1}" for i in range(self.n)), f"algo-{rank + 1}")

    def run(self, work) -> list:
        results: list = [None] * self.n
        threads = [threading.Thread(target=lambda r=r: results.__setitem__(r, work(self.member(r), r)))
                   for r in range(self.n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        return results


@pytest.mark.parametrize("sparse", [False, True])
def test_merged_scaler_equals_the_scaler_of_all_rows(sparse):
    rng = np.random.default_rng(3)
    shards = [(rng.normal(size=(n, 4)) * [1, 5, 0, 50] + [3, -200, 7, 1e4]).astype(np.float32) for n in (30, 50, 20)]
    labels = [rng.normal(size=len(x)) * 10 + 100 for x in shards]
    kw = dict(normalize_data=True, unbias_data=True, normalize_label=True, unbias_label=True)
    blocks = [sp.csr_matrix(x) for x in shards] if sparse else shards
    whole = fit_scaler([sp.vstack(blocks, format="csr") if sparse else np.vstack(blocks)], np.concatenate(labels), **kw)
    merged = _Group(3).run(lambda c, r: fit_scaler([blocks[r]], labels[r], allreduce=c.allreduce_sum, **kw))
    for scaler in merged:
        np.testing.assert_allclose(scaler.mean, whole.mean, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(scaler.std, whole.std, rtol=1e-6)
        assert scaler.label_mean == pytest.approx(whole.label_mean) and scaler.label_std == pytest.approx(whole.label_std)
        assert scaler.std[2] == 1.0  # a constant column is not divided


def test_merged_start_state_uses_every_hosts_class_balance():
    cfg = resolve({"predictor_type": "binary_classifier", "feature_dim": "3", "num_models": "4"})
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(40, 3)).astype(np.float32) for _ in range(2)]
    y = [np.zeros(40, np.float32), (np.arange(40) % 2).astype(np.float32)]  # 20 positives of 80 rows
    states = _Group(2).run(lambda c, r: start_state(cfg, [X[r]], y[r], allreduce=c.allreduce_sum))
    whole = start_state(cfg, [np.vstack(X)], np.concatenate(y))
    for s in states:
        np.testing.assert_array_equal(s.P, whole.P)
        np.testing.assert_allclose(s.spread.pos_weight, spread(cfg, 4, balance_ratio=3.0).pos_weight)
        np.testing.assert_allclose(s.scaler.mean, whole.scaler.mean, rtol=1e-9, atol=1e-12)


def _batch(X: np.ndarray, y: np.ndarray) -> PreparedBatch:
    return PreparedBatch(X=X, y=y.reshape(-1, 1), y_raw=y)


def _model(P: np.ndarray, sync=None) -> ParallelLinear:
    opt = ParallelOptimizer(np, "sgd", P.shape, spread(resolve({"predictor_type": "binary_classifier",
                                                                 "feature_dim": "3", "num_models": "2",
                                                                 "momentum": "0"}), 2).columns(1))
    return ParallelLinear(np, P.copy(), 2, 1, Logistic(), opt, sync=sync)


def test_a_synchronised_step_is_the_step_of_the_global_batch():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3)).astype(np.float32)
    y = (rng.random(30) > 0.5).astype(np.float32)
    P = rng.normal(size=(4, 2)).astype(np.float32)
    whole = _model(P)
    whole.train_step(_batch(X, y))
    shards = [(X[:20], y[:20]), (X[20:], y[20:])]

    def host(c, r):
        m = _model(P, GradientSync(c, np, P.shape))
        m.train_step(_batch(*shards[r]))  # both hosts have a batch: one step
        steps = 0
        while m.idle_step():  # both out of rows: no more steps
            steps += 1
        return m.P, steps

    for P_host, idle_steps in _Group(2).run(host):
        np.testing.assert_allclose(P_host, whole.P, rtol=1e-5, atol=1e-6)
        assert idle_steps == 0


def test_a_host_out_of_rows_keeps_stepping_with_the_others():
    rng = np.random.default_rng(2)
    P = rng.normal(size=(4, 2)).astype(np.float32)
    batches = [[_batch(rng.normal(size=(5, 3)).astype(np.float32), np.ones(5, np.float32)) for _ in range(k)]
               for k in (3, 1)]

    def host(c, r):
        m = _model(P, GradientSync(c, np, P.shape))
        for b in batches[r]:
            m.train_step(b)
        while m.idle_step():
            pass
        return m.P, m.opt.t

    (P1, t1), (P2, t2) = _Group(2).run(host)
    assert t1 == t2 == 3  # three global steps on both hosts
    np.testing.assert_array_equal(P1, P2)


def test_merged_epoch_statistics_sum_every_host():
    criterion = criterion_for("binary_classifier", "accuracy", "binary_classification_cross_entropy_objective")
    rng = np.random.default_rng(4)
    S = [rng.normal(size=(n, 2)).astype(np.float32) for n in (10, 15)]
    Y = [(rng.random((n, 1)) > 0.5).astype(np.float32) for n in (10, 15)]
    L = [rng.random((n, 2)).astype(np.float32) for n in (10, 15)]
    whole = EpochStats(np, 2, criterion, binary=True)
    for s, y, loss in zip(S, Y, L, strict=True):
        whole.add(s, y, loss)

    def host(c, r):
        stats = EpochStats(np, 2, criterion, binary=True)
        stats.add(S[r], Y[r], L[r])
        merge_stats(stats, c)
        return stats

    for stats in _Group(2).run(host):
        assert stats.rows == 25
        np.testing.assert_allclose(stats.objective(), whole.objective())
        np.testing.assert_array_equal(stats.hist.counts, whole.hist.counts)
        np.testing.assert_array_equal(stats.criterion_values()[0], whole.criterion_values()[0])


def test_no_mxnet_import_on_one_host():
    code = ("import sys; from smlocal.algorithms.cluster.kvstore import Cluster; "
            "from smlocal.algorithms import kmeans, linear_learner; assert 'mxnet' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
