"""Multi-host training over MXNet's KVStore ``dist_sync``, as the built-ins do (spec §8).

``Cluster.from_env(env)`` gives an algorithm a few collective operations -- ``allreduce_sum``,
``allgather``, ``gather_rows``, ``broadcast``, ``barrier`` -- plus ``rank`` (this host's index in
resourceconfig.json's ``hosts``, so ``rank == 0`` is the first host), ``size`` and ``close``/``abort``.
Every host must call the same operations in the same order with the same shapes.

One host: the base ``Cluster`` (identities, no MXNet import, no network). Several hosts: ``DistCluster``:

- the first host starts the KVStore scheduler and server (``DMLC_ROLE=scheduler|server``) as
  subprocesses of its training process, which die with it (``PR_SET_PDEATHSIG``); every host's
  training process is a worker. ``DMLC_PS_ROOT_URI``/``DMLC_PS_ROOT_PORT`` come from the environment, else
  the first host's address and port 9000 as on SageMaker; ``DMLC_NUM_SERVER=1``, ``DMLC_NUM_WORKER`` = the
  number of hosts; a loopback root (local runs) pins ``DMLC_NODE_HOST=127.0.0.1``/``DMLC_INTERFACE=lo``.
  Workers and the server take free ports from the OS, so concurrent jobs only need distinct root ports.
- A sum is a push then a pull of one key: the dist_sync server adds the pushes of all workers before
  it answers any pull.
- ps-lite waits forever for a dead peer. ``cluster_monitor`` watches the hosts beside it (hello,
  heartbeats, goodbye on a TCP port: ``SMLOCAL_KV_MONITOR_PORT``, default root port + 1), and a watchdog
  thread bounds every wait by ``SMLOCAL_KV_TIMEOUT`` seconds (default 30): joining, starting the
  KVStore, and each collective once every host has reached it (a host still busy with its own shard is
  slow, not lost: its heartbeats say so). On any failure the host logs it, writes ``output/failure``
  (the first cause wins), tells the other hosts, and exits at once with the error's exit code: a normal
  interpreter exit would block in ps-lite's finalize barrier.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from smlocal.algorithms.cluster.monitor import HEARTBEAT_S, Coordinator, Failure, MonitorClient
from smlocal.errors import (AlgorithmError, CustomerError, PlatformError, SmlocalError, exit_code_for,
                            failure_text, write_failure)

DEFAULT_ROOT_PORT = 9000  # SageMaker's DMLC_PS_ROOT_PORT
DEFAULT_TIMEOUT_S = 30.0
TIMEOUT_ENV = "SMLOCAL_KV_TIMEOUT"
MONITOR_PORT_ENV = "SMLOCAL_KV_MONITOR_PORT"
PARENT_ENV = "SMLOCAL_KV_PARENT"
WATCH_S = 0.2
PR_SET_PDEATHSIG = 1

log = logging.getLogger("smlocal")


# ------------------------------------------------------------------------------------------- settings


class _HostRank:
    """``size`` and ``rank`` (index in resourceconfig.json's ``hosts``) from ``hosts`` and ``current_host``."""

    hosts: tuple[str, ...]
    current_host: str

    @property
    def size(self) -> int:
        return len(self.hosts)

    @property
    def rank(self) -> int:
        return self.hosts.index(self.current_host)


@dataclass(frozen=True)
class ClusterSettings(_HostRank):
    hosts: tuple[str, ...]
    current_host: str
    root_uri: str  # the scheduler's address
    root_port: int
    monitor_port: int
    timeout: float
    interface: str | None  # DMLC_INTERFACE for non-loopback runs

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.root_uri).is_loopback

    def dmlc_env(self, role: str) -> dict[str, str]:
        """The ``DMLC_*`` variables of one KVStore role on this host."""
        env = {"DMLC_ROLE": role, "DMLC_PS_ROOT_URI": self.root_uri, "DMLC_PS_ROOT_PORT": str(self.root_port),
               "DMLC_NUM_SERVER": "1", "DMLC_NUM_WORKER": str(self.size)}
        if self.loopback:
            env.update(DMLC_NODE_HOST="127.0.0.1", DMLC_INTERFACE="lo")
        elif self.interface:
            env["DMLC_INTERFACE"] = self.interface
        return env


def _number(environ: Mapping[str, str], name: str, default: float, kind: type = float) -> Any:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value <= 0 or (kind is int and value > 65535):
        what = "a port number (1-65535)" if kind is int else "a positive number of seconds"
        raise CustomerError(f"The environment variable {name}='{raw}' is not valid: it must be {what}.")
    return value


def cluster_settings(hosts: tuple[str, ...], current_host: str, environ: Mapping[str, str],
                     resolve: Callable[[str], str] = socket.gethostbyname,
                     interface: str | None = None) -> ClusterSettings:
    """Where the scheduler is and how long to wait, from resourceconfig.json's hosts and the environment."""
    if current_host not in hosts:
        raise CustomerError(f"resourceconfig.json: current_host '{current_host}' is not one of its hosts "
                            f"{list(hosts)}.")
    uri = environ.get("DMLC_PS_ROOT_URI", "").strip() or hosts[0]
    try:
        ipaddress.ip_address(uri)
    except ValueError:  # a host name: ps-lite binds and connects to addresses
        try:
            uri = resolve(uri)
        except OSError as exc:
            raise PlatformError(f"Cannot resolve the first host '{uri}' ({exc}); set DMLC_PS_ROOT_URI to its "
                                "address.") from None
    port = _number(environ, "DMLC_PS_ROOT_PORT", DEFAULT_ROOT_PORT, int)
    monitor = _number(environ, MONITOR_PORT_ENV, port + 1 if port < 65535 else port - 1, int)
    if monitor == port:
        raise CustomerError(f"{MONITOR_PORT_ENV}={monitor} is the KVStore's DMLC_PS_ROOT_PORT: choose another port.")
    timeout = _number(environ, TIMEOUT_ENV, DEFAULT_TIMEOUT_S)
    return ClusterSettings(tuple(hosts), current_host, uri, port, monitor, timeout,
                           environ.get("DMLC_INTERFACE") or interface)


# ------------------------------------------------------------------------------------------- one host


class Cluster(_HostRank):
    """The hosts of a training job. This base class is the one-host cluster: every operation is local."""

    store_type = "local"

    def __init__(self, hosts: tuple[str, ...] = ("algo-1",), current_host: str = "algo-1"):
        self.hosts = tuple(hosts)
        self.current_host = current_host

    @staticmethod
    def from_env(env: Any, environ: Mapping[str, str] | None = None) -> "Cluster":
        """The job's cluster from ``env.resources`` (resourceconfig.json): several hosts start the KVStore."""
        hosts, current = tuple(env.resources.hosts), env.resources.current_host
        if len(hosts) <= 1:
            return Cluster((current,), current)
        settings = cluster_settings(hosts, current, os.environ if environ is None else environ,
                                    interface=getattr(env.resources, "network_interface_name", None))
        return DistCluster(settings, env.paths.failure_file).start()


    @property
    def is_first(self) -> bool:
        return self.rank == 0

    def allreduce_sum(self, array: Any) -> np.ndarray:
        """The element-wise sum over hosts. float32 stays float32; other floats come back float64, integers
        and booleans as int64 (exact below 2**53)."""
        return _out(np.asarray(array), np.array(array, dtype=_wire_dtype(np.asarray(array))))

    def allgather(self, array: Any) -> np.ndarray:
        """Every host's ``array`` (same shape on all), stacked in host order: (size, *shape)."""
        return self.allreduce_sum(np.asarray(array)[None])

    def gather_rows(self, array: Any) -> np.ndarray:
        """Every host's rows (lengths may differ, trailing shape may not), concatenated in host order."""
        return np.array(array)

    def broadcast(self, array: Any) -> np.ndarray:
        """The first host's ``array``; the others pass an array of the same shape (its values are ignored)."""
        return np.array(array)

    def barrier(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self, exc: BaseException) -> None:
        """A failing host: nothing to tell on one host (the entry point reports the error)."""

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:
            self.abort(exc)  # several hosts: never returns
        else:
            self.close()


def _wire_dtype(a: np.ndarray) -> np.dtype:
    return np.dtype(np.float32) if a.dtype == np.float32 else np.dtype(np.float64)


def _out(original: np.ndarray, summed: np.ndarray) -> np.ndarray:
    if original.dtype.kind in "biu":
        return np.rint(summed).astype(np.int64)
    return summed


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


# ------------------------------------------------------------------------------------------- several hosts


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
    """Several hosts: MXNet KVStore dist_sync, watched by ``cluster_monitor`` and a watchdog thread."""

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
            self._die(AlgorithmError(str(exc)))
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
        flat = np.ascontiguousarray(a, dtype=_wire_dtype(a)).reshape(-1)
        if flat.size == 0:
            return _out(a, flat.reshape(a.shape).copy())
        with self._op("allreduce"):
            summed = self._pushpull(flat)
        return _out(a, summed.reshape(a.shape))

    def allgather(self, array: Any) -> np.ndarray:
        a = np.asarray(array)
        stacked = np.zeros((self.size, *a.shape), dtype=_wire_dtype(a))
        stacked[self.rank] = a
        return _out(a, self.allreduce_sum(stacked))

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
        text = failure_text(exc)
        try:
            log.error(text)
            if not isinstance(exc, SmlocalError):
                log.error("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
            write_failure(self.failure_file, text)
        except Exception:  # noqa: BLE001 - a full disk must not keep this process alive
            pass
        if self._client is not None and tell_others:
            self._client.report_failure(text)
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
                        f"{s.timeout:g} s ({TIMEOUT_ENV}).")
            return None
        if self._arrived is None or self._arrived[0] != number:
            self._arrived = (number, now)
        if now - self._arrived[1] > s.timeout:
            return (f"the KVStore {name} (collective operation #{number}) did not complete within {s.timeout:g} s "
                    f"although every host reached it: the scheduler/server on {s.hosts[0]} "
                    f"({s.root_uri}:{s.root_port}) stopped answering.")
        return None
