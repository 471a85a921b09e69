"""The several-host cluster: MXNet's KVStore ``dist_sync``, as the built-ins train on several instances.

``DistCluster`` is what ``join_cluster`` gives every host of a job with several instances; its addresses,
ports and timeout are ``settings.ClusterSettings``.

- The first host starts the KVStore scheduler and server (``DMLC_ROLE=scheduler|server``) as
  subprocesses of its training process, which die with it (``PR_SET_PDEATHSIG``); every host's
  training process is a worker. Workers and the server take free ports from the OS, so concurrent jobs
  only need distinct root ports.
- A sum is a push then a pull of one key: the dist_sync server adds the pushes of all workers before
  it answers any pull.
- ps-lite waits forever for a dead peer. The liveness monitor (``monitor``) watches the hosts beside it
  (hello, heartbeats, goodbye on a TCP port), and a watchdog thread bounds every wait by ``SMLOCAL_KV_TIMEOUT``
  seconds: joining, starting the KVStore, and each collective once every host has reached it (a host
  still busy with its own shard is slow, not lost: its heartbeats say so). On any failure the host
  logs it, writes ``output/failure`` (the first cause wins), tells the other hosts, and exits at once
  with the error's exit code: a normal interpreter exit would block in ps-lite's finalize barrier.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from smlocal.algorithms.cluster.monitor import HEARTBEAT_S, Coordinator, Failure, MonitorClient
from smlocal.algorithms.cluster.settings import MONITOR_PORT_ENV, TIMEOUT_ENV, ClusterSettings
from smlocal.algorithms.cluster.single import Cluster, from_wire, wire_dtype
from smlocal.errors import (AlgorithmError, CustomerError, PlatformError, SmlocalError, exit_code_for,
                            failure_text, report)

PARENT_ENV = "SMLOCAL_KV_PARENT"
WATCH_S = 0.2
PR_SET_PDEATHSIG = 1

log = logging.getLogger("smlocal")


def _peer_error(failure: Failure) -> SmlocalError:
    """The error a host fails with because of another host: a peer's own error keeps its class."""
    if failure.kind != "failed":
        return AlgorithmError(failure.message)
    text = failure.message
    for cls in (CustomerError, PlatformError, AlgorithmError):
        prefix = f"{cls.prefix}: "
        if text.startswith(prefix):
            return cls(f"host {failure.host} failed: {text[len(prefix):]}")
    return AlgorithmError(f"host {failure.host} failed: {text}")


def _die_with_parent(parent: int) -> None:
    """Linux: SIGKILL this process when its parent dies (a KVStore role never outlives its host)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def serve_role() -> None:
    """Entry point of the scheduler and server subprocesses (``DMLC_ROLE`` says which)."""
    _die_with_parent(int(os.environ.get(PARENT_ENV, "0") or 0))
    import mxnet  # noqa: F401 - with DMLC_ROLE=scheduler|server the import runs the role until the job ends


class DistCluster(Cluster):
    """Several hosts: MXNet KVStore dist_sync, watched by the liveness monitor and a watchdog thread."""

    store_type = "dist_sync"

    def __init__(self, settings: ClusterSettings, failure_file: Path):
        super().__init__(settings.hosts, settings.current_host)
        self.settings = settings
        self.failure_file = Path(failure_file)
        self.timeout = settings.timeout
        self._coordinator: Coordinator | None = None
        self._client: MonitorClient | None = None
        self._roles: dict[str, subprocess.Popen] = {}
        self._kv: Any = None
        self._mx: Any = None
        self._keys: dict[tuple[str, int], tuple[str, Any, Any]] = {}
        self._ops = 0  # collective operations entered
        self._current: tuple[int, str, float] | None = None  # (op number, name, entered at)
        self._arrived: tuple[int, float] | None = None  # (op number, when every host had reached it)
        self._closing_deadline: float | None = None
        self._dying = threading.Event()
        self._die_lock = threading.Lock()
        self._stop = threading.Event()

    # ------------------------------------------------------------------ start
    def start(self) -> "DistCluster":
        s = self.settings
        try:
            if importlib.util.find_spec("mxnet") is None:
                raise CustomerError(f"Training on {s.size} hosts uses MXNet's KVStore, but MXNet is not installed "
                                    "here: install mxnet==1.9.1 (pip install 'smlocal[mxnet]') or train on one host.")
            if self.is_first:
                bind = "127.0.0.1" if s.loopback else ""
                try:
                    self._coordinator = Coordinator(s.hosts, s.monitor_port, s.timeout, bind=bind).start()
                except OSError as exc:
                    raise PlatformError(f"Cannot listen on port {s.monitor_port} for the cluster monitor ({exc}): "
                                        f"set {MONITOR_PORT_ENV} to a free port.") from None
            self._client = MonitorClient(s.current_host, s.root_uri, s.monitor_port, s.timeout, s.hosts[0],
                                         on_failure=self._on_peer_failure)
            self._client.connect()
            threading.Thread(target=self._watch, daemon=True, name="smlocal-kv-watchdog").start()
            if self.is_first:
                for role in ("scheduler", "server"):
                    self._start_role(role)
            os.environ.update(s.dmlc_env("worker"))
            with self._op("start of the KVStore worker"):
                import mxnet as mx

                self._mx = mx
                self._kv = mx.kv.create("dist_sync")
            log.info(f"Host {s.current_host} joined the KVStore as worker {self.rank + 1} of {s.size} "
                     f"(scheduler at {s.root_uri}:{s.root_port})")
        except ConnectionError as exc:
            self._die(AlgorithmError(f"{exc}{s.hint}"))
        except BaseException as exc:  # noqa: BLE001 - any failure here must not leave a hanging cluster
            self._die(exc)
        return self

    def _start_role(self, role: str) -> None:
        env = {**os.environ, **self.settings.dmlc_env(role), PARENT_ENV: str(os.getpid()),
               "OMP_NUM_THREADS": "1", "MXNET_CPU_WORKER_NTHREADS": "1"}
        command = [sys.executable, "-c", "from smlocal.algorithms.cluster.kvstore import serve_role; serve_role()"]
        self._roles[role] = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
        log.info(f"Process {self._roles[role].pid} is a shell:{role}.")

    # ------------------------------------------------------------------ collectives
    @contextlib.contextmanager
    def _op(self, name: str) -> Iterator[None]:
        self._ops += 1
        self._current = (self._ops, name, time.monotonic())
        try:
            yield
        finally:
            self._current = None

    def _pushpull(self, flat: np.ndarray) -> np.ndarray:
        mx = self._mx
        signature = (flat.dtype.name, int(flat.size))
        if signature not in self._keys:  # a new key: init is itself collective (rank 0 sets, all wait)
            key = f"smlocal{len(self._keys)}"
            self._kv.init(key, mx.nd.zeros(flat.size, dtype=flat.dtype))
            self._keys[signature] = (key, mx.nd.zeros(flat.size, dtype=flat.dtype),
                                     mx.nd.zeros(flat.size, dtype=flat.dtype))
        key, source, target = self._keys[signature]
        source[:] = flat
        self._kv.push(key, source)
        self._kv.pull(key, out=target)
        return target.asnumpy()

    def allreduce_sum(self, array: Any) -> np.ndarray:
        a = np.asarray(array)
        flat = np.ascontiguousarray(a, dtype=wire_dtype(a)).reshape(-1)
        if flat.size == 0:
            return from_wire(a, flat.reshape(a.shape).copy())
        with self._op("allreduce"):
            summed = self._pushpull(flat)
        return from_wire(a, summed.reshape(a.shape))

    def allgather(self, array: Any) -> np.ndarray:
        a = np.asarray(array)
        stacked = np.zeros((self.size, *a.shape), dtype=wire_dtype(a))
        stacked[self.rank] = a
        return from_wire(a, self.allreduce_sum(stacked))

    def gather_rows(self, array: Any) -> np.ndarray:
        a = np.asarray(array)
        counts = self.allgather(np.array([a.shape[0]], dtype=np.int64)).ravel()
        padded = np.zeros((int(counts.max()), *a.shape[1:]), dtype=a.dtype)
        padded[:a.shape[0]] = a
        stacked = self.allgather(padded)
        return np.concatenate([stacked[h][:counts[h]] for h in range(self.size)]).astype(a.dtype, copy=False)

    def broadcast(self, array: Any) -> np.ndarray:
        a = np.asarray(array)
        return self.allreduce_sum(a if self.is_first else np.zeros_like(a)).astype(a.dtype, copy=False)

    def barrier(self) -> None:
        with self._op("barrier"):
            self._kv._barrier()

    # ------------------------------------------------------------------ end
    def close(self) -> None:
        """Clean end: every host reaches the final barrier, says goodbye, then ps-lite finalizes."""
        try:
            with self._op("final barrier"):
                self._kv._barrier()
        except BaseException as exc:  # noqa: BLE001
            self._die(exc)
        self._closing_deadline = time.monotonic() + self.timeout
        self._client.goodbye()
        kv, self._kv, self._keys = self._kv, None, {}
        del kv  # MXKVStoreFree: ps-lite's finalize barrier; rank 0 stops the server
        for role, proc in self._roles.items():
            try:
                proc.wait(max(self._closing_deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning(f"The KVStore {role} (process {proc.pid}) did not stop: killing it.")
                proc.kill()
        self._client.close()
        if self._coordinator is not None:
            self._coordinator.close(timeout=5.0)
        self._stop.set()

    def abort(self, exc: BaseException) -> None:
        self._die(exc)

    def _on_peer_failure(self, failure: Failure) -> None:
        if self._closing_deadline is not None or self._dying.is_set():
            return  # past the final barrier every host has finished its work; or already failing
        self._die(_peer_error(failure), tell_others=False)  # the coordinator has told every host

    def _die(self, exc: BaseException, tell_others: bool = True) -> None:
        """Log, write output/failure, tell the other hosts, stop the KVStore roles, exit. Never returns."""
        if not self._die_lock.acquire(blocking=False):
            if threading.current_thread() is threading.main_thread():
                while True:  # another thread is ending the process
                    time.sleep(1)
            return
        self._dying.set()
        with contextlib.suppress(Exception):  # a broken log or disk must not keep this process alive
            report(exc, self.failure_file)
        if self._client is not None and tell_others:
            self._client.report_failure(failure_text(exc))
        if self._coordinator is not None:  # let it deliver the news before the process ends
            if self._client is not None:
                self._client.close()
            self._coordinator.wait_done(timeout=3.0)
        for proc in self._roles.values():
            with contextlib.suppress(OSError):
                proc.kill()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(exit_code_for(exc))

    # ------------------------------------------------------------------ watchdog thread
    def _watch(self) -> None:
        next_beat = 0.0
        while not self._stop.is_set() and not self._dying.is_set():
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + HEARTBEAT_S
                self._client.heartbeat(self._ops)
            problem = self._problem(now)
            if problem is not None:
                if self._closing_deadline is not None:  # the job's work is done: finish here
                    log.warning(f"{problem} The training finished on every host: exiting.")
                    with contextlib.suppress(Exception):
                        sys.stdout.flush()
                    os._exit(0)
                self._die(AlgorithmError(problem))
            time.sleep(WATCH_S)

    def _problem(self, now: float) -> str | None:
        """What is wrong right now, if anything (see the module docstring)."""
        s = self.settings
        if self._closing_deadline is not None:
            if now > self._closing_deadline:
                return f"The KVStore did not shut down within {s.timeout:g} s."
            return None
        if self._client.silent_for() > s.timeout:
            return (f"lost contact with host {s.hosts[0]}, the first host: no heartbeat for {s.timeout:g} s "
                    f"({TIMEOUT_ENV}).")
        for role, proc in self._roles.items():
            code = proc.poll()
            if code is not None:
                return (f"the KVStore {role} process (pid {proc.pid}) on host {s.current_host} exited with code "
                        f"{code} during training; the parameter server is gone (is port {s.root_port} free on "
                        f"{s.root_uri}?).")
        current = self._current
        if current is None:
            return None
        number, name, entered = current
        ops = self._client.peer_ops
        behind = [h for h in s.hosts if h != s.current_host and ops.get(h, 0) < number]
        if behind:
            self._arrived = None
            if number == 1 and now - entered > s.timeout:
                absent = [h for h in behind if h not in ops]  # never connected: the coordinator's wording
                what = "join the cluster" if absent else "start the KVStore worker"
                late = absent or behind
                return (f"host{'s' if len(late) > 1 else ''} {', '.join(late)} did not {what} within "
                        f"{s.timeout:g} s ({TIMEOUT_ENV}).{s.hint if absent else ''}")
            return None
        if self._arrived is None or self._arrived[0] != number:
            self._arrived = (number, now)
        if now - self._arrived[1] > s.timeout:
            return (f"the KVStore {name} (collective operation #{number}) did not complete within {s.timeout:g} s "
                    f"although every host reached it: the scheduler/server on {s.hosts[0]} "
                    f"({s.root_uri}:{s.root_port}) stopped answering.")
        return None
