"""The built-in k-means (``kmeans:1``): hyperparameters, the training job around the streaming core, logs.

``train(env)`` is what ``container/train`` calls for ``SMLOCAL_ALGORITHM=kmeans``. It reads the
``train`` channel (and ``test`` if given) through the data plane, runs the streaming math of
``kmeans_streaming`` for ``epochs`` passes, shrinks the K = k * extra_center_factor centers to k, logs
the built-in's lines (spec §1.4, §5.3) and writes ``model/model_<host>`` (spec §3.1). User mistakes
raise ``CustomerError``; the entry point turns them into ``output/failure`` and exit code 2.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np
import scipy.sparse as sp

from smlocal.algorithms.cluster.kvstore import Cluster
from smlocal.algorithms.common.hyperparameters import AUTO, Param, Schema, dimension_error
from smlocal.algorithms.kmeans.streaming import (
    KMEANS_PP,
    RANDOM,
    Reduction,
    StreamingKMeans,
    init_centers,
    reduce_centers,
    squared_distances,
    on_device,
)
from smlocal.algorithms.common.reporting import Reporter
from smlocal.logs import apply_log_level
from smlocal.arrays import ArrayModule, nvidia_smi_count, select_array_module
from smlocal.environment import TrainingEnv
from smlocal.errors import CustomerError

ALGORITHM = "AWS/KMeansWebscale"
AUTO_EXTRA_CENTER_FACTOR = 10  # LOG-KM21: "'extra_center_factor' was set to 'auto', evaluated to 10."
AUTO_LOCAL_LLOYD_TRIALS = 10  # LOG-KM19/21: attempts #0..#9
SEED = 0  # fixed: the same input gives the same model
PREFETCH_DEPTH = 4  # batches parsed ahead of the math, on a reader thread

# Order: required first (the missing-names message lists 'k', 'feature_dim'), then default-input.json's.
SCHEMA = Schema("kmeans", [
    Param("k", "int", minimum=2),
    Param("feature_dim", "int", minimum=1),
    Param("init_method", "str", "random", choices=(RANDOM, KMEANS_PP)),
    Param("mini_batch_size", "int", "5000", minimum=1),
    Param("epochs", "int", "1", minimum=1),
    Param("extra_center_factor", "int", AUTO, minimum=1, auto=True),
    Param("local_lloyd_max_iter", "int", "300", minimum=1),
    Param("local_lloyd_tol", "float", "0.0001", minimum=0, maximum=1),
    Param("local_lloyd_init_method", "str", "kmeans++", choices=(RANDOM, KMEANS_PP)),
    Param("local_lloyd_num_trials", "int", AUTO, minimum=1, auto=True),
    Param("half_life_time_size", "int", "0", minimum=0),
    Param("eval_metrics", "list", '["msd"]', choices=("msd", "ssd")),
    Param("force_dense", "bool", "true"),
    Param("_disable_wait_to_read", "bool", "false"),
    Param("_enable_profiler", "bool", "false"),
    Param("_kvstore", "str", AUTO,
          choices=(AUTO, "local", "device", "dist_sync", "dist_device_sync", "dist_async")),
    Param("_log_level", "str", "info"),
    Param("_num_gpus", "int", AUTO, minimum=0, auto=True),
    Param("_num_kv_servers", "int", "1", minimum=1),
    Param("_num_slices", "int", "1", minimum=1),
    Param("_tuning_objective_metric", "str", ""),
])


@dataclass(frozen=True)
class KMeansConfig:
    """Typed, resolved hyperparameters (``auto`` replaced by what the built-in evaluates it to)."""

    k: int
    feature_dim: int
    mini_batch_size: int = 5000
    epochs: int = 1
    init_method: str = RANDOM
    extra_center_factor: int = AUTO_EXTRA_CENTER_FACTOR
    local_lloyd_max_iter: int = 300
    local_lloyd_tol: float = 1e-4
    local_lloyd_init_method: str = KMEANS_PP
    local_lloyd_num_trials: int = AUTO_LOCAL_LLOYD_TRIALS
    half_life_time_size: int = 0
    eval_metrics: tuple[str, ...] = ("msd",)
    force_dense: bool = True
    num_gpus: int | str = AUTO
    log_level: str = "info"

    @property
    def num_centers(self) -> int:
        """K, the number of streaming centers (before capping by the data available)."""
        return self.k * self.extra_center_factor


def resolve_config(values: dict[str, Any]) -> KMeansConfig:
    """``SCHEMA.parse`` output -> ``KMeansConfig``, resolving ``auto`` as the built-in does."""
    factor = values["extra_center_factor"]
    trials = values["local_lloyd_num_trials"]
    return KMeansConfig(
        k=values["k"],
        feature_dim=values["feature_dim"],
        mini_batch_size=values["mini_batch_size"],
        epochs=values["epochs"],
        init_method=values["init_method"],
        extra_center_factor=AUTO_EXTRA_CENTER_FACTOR if factor == AUTO else factor,
        local_lloyd_max_iter=values["local_lloyd_max_iter"],
        local_lloyd_tol=values["local_lloyd_tol"],
        local_lloyd_init_method=values["local_lloyd_init_method"],
        local_lloyd_num_trials=AUTO_LOCAL_LLOYD_TRIALS if trials == AUTO else trials,
        half_life_time_size=values["half_life_time_size"],
        eval_metrics=tuple(dict.fromkeys(values["eval_metrics"])),
        force_dense=values["force_dense"],
        num_gpus=values["_num_gpus"],
        log_level=values["_log_level"],
    )


def configure(env: TrainingEnv, log: logging.Logger) -> KMeansConfig:
    """Log the three configuration lines of the built-ins and return the validated configuration."""
    defaults = SCHEMA.defaults()
    provided = dict(env.hyperparameters)
    log.info(f"Reading default configuration from {__name__} (default-input.json): {defaults}")
    log.info(f"Merging with provided configuration from {env.paths.config_dir / 'hyperparameters.json'}: "
             f"{provided}")
    values = SCHEMA.parse(provided)
    log.info(f"Final configuration: {({**defaults, **provided})}")
    cfg = resolve_config(values)
    for name in ("extra_center_factor", "local_lloyd_num_trials"):
        if values[name] == AUTO:
            log.info(f"'{name}' was set to 'auto', evaluated to {getattr(cfg, name)}.")
    return cfg


# ----------------------------------------------------------------------------------------------- data


def _open_channel(env: TrainingEnv, name: str):
    from smlocal.data.channels import open_channel  # the data plane; imported when a job runs

    return open_channel(env, name)


def _features(batch: Any, channel: str, feature_dim: int) -> Any:
    """The batch's feature matrix, after checking its width against ``feature_dim``."""
    features = batch.features
    if features.ndim != 2 or features.shape[1] != feature_dim:
        got = features.shape[1] if features.ndim == 2 else features.shape[-1]
        raise dimension_error(channel, feature_dim, got)
    return features


class _Prefetch:
    """Iterate ``source`` on a reader thread, ``depth`` items ahead, so parsing overlaps the math.

    The reader's exception is re-raised in the consumer at the point the item would have arrived.
    ``close`` stops the reader (it never blocks forever on a full queue).
    """

    _DONE = object()

    def __init__(self, source: Iterable, depth: int = PREFETCH_DEPTH):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iter(source),), daemon=True,
                                        name="smlocal-prefetch")
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Iterator) -> None:
        try:
            for item in source:
                if not self._put((item, None)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            self._put((self._DONE, exc))
            return
        self._put((self._DONE, None))

    def __iter__(self) -> Iterator:
        while True:
            item, exc = self._queue.get()
            if exc is not None:
                raise exc
            if item is self._DONE:
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> "_Prefetch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _IterStats:
    """The data iterator counters of the built-ins' ``#metrics`` lines."""

    total_records: int = 0
    total_batches: int = 0
    max_records: int = 0
    max_batches: int = 0
    resets: int = 0
    records: int = 0
    batches: int = 0

    def add(self, rows: int) -> None:
        self.records += rows
        self.batches += 1
        self.total_records += rows
        self.total_batches += 1

    def reset(self) -> None:
        self.max_records = max(self.max_records, self.records)
        self.max_batches = max(self.max_batches, self.batches)
        self.resets += 1
        self.records = self.batches = 0

    def metrics(self) -> dict[str, float]:
        return {
            "Max Batches Seen Between Resets": max(self.max_batches, self.batches),
            "Number of Batches Since Last Reset": self.batches,
            "Number of Records Since Last Reset": self.records,
            "Total Batches Seen": self.total_batches,
            "Total Records Seen": self.total_records,
            "Max Records Seen Between Resets": max(self.max_records, self.records),
            "Reset Count": self.resets,
        }


def _stack(parts: list) -> Any:
    if any(sp.issparse(p) for p in parts):
        return sp.vstack([sp.csr_matrix(p) for p in parts], format="csr")
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


# ------------------------------------------------------------------------------------------- training


@dataclass
class FitResult:
    centers: np.ndarray  # (k, d) float32
    train_msd: float
    records: int  # rows processed over all epochs
    timers: dict[str, float]  # ms, the built-in's timer metrics
    epochs_ms: float  # time of the passes over the data


def _math_threads() -> int:
    """BLAS threads for the per-batch products: every core but one, which the reader thread parses on.

    The products per mini-batch are small; on a 2-core host one BLAS thread beside the reader is
    measurably faster than two threads fighting it.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def fit(cfg: KMeansConfig, channel: Any, arrays: ArrayModule, reporter: Reporter,
        cluster: Cluster | None = None) -> FitResult:
    """Stream ``epochs`` passes of ``channel`` through the streaming k-means, then shrink to k centers.

    With several hosts (``cluster``) each streams its own shard; their states are merged before the
    shrink, which the first host runs and shares.
    """
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    with threadpool_limits(limits=_math_threads(), user_api="blas"):
        return _fit(cfg, channel, arrays, reporter, cluster or Cluster())


def _fit(cfg: KMeansConfig, channel: Any, arrays: ArrayModule, reporter: Reporter, cluster: Cluster) -> FitResult:
    log = reporter.log
    stats = _IterStats()
    t0 = time.time()
    with _Prefetch(channel.batches(cfg.mini_batch_size, 0)) as first_epoch:
        batches = iter(first_epoch)
        # Init: the first mini-batch (more only if it holds fewer rows than K, e.g. a tiny batch size).
        head: list = []
        rows = 0
        for batch in batches:
            features = _features(batch, "train", cfg.feature_dim)
            if features.shape[0] == 0:
                continue
            head.append(features)
            rows += features.shape[0]
            stats.add(features.shape[0])
            if rows >= cfg.num_centers:
                break
        if rows == 0:
            raise CustomerError("No training data found in channel 'train': it holds no records. "
                                "Please provide a non-empty train dataset.")
        if rows < cfg.k and cluster.size == 1:  # several hosts: checked on the merged states
            raise CustomerError(
                f"The value of k hyperparameter '{cfg.k}' is larger than the number of records in the train "
                f"dataset '{rows}'. Please set k to at most the number of training records."
            )
        if rows < cfg.mini_batch_size:
            log.info(f"Batch size {cfg.mini_batch_size} is bigger than the first batch data. "
                     f"Effective batch size used to initialize is {rows}")
        num_centers = min(cfg.num_centers, rows)
        init_data = _stack(head)
        if cfg.force_dense and sp.issparse(init_data):
            init_data = init_data.toarray()
        state = StreamingKMeans.start(init_centers(init_data, num_centers, cfg.init_method, SEED), arrays,
                                      cfg.half_life_time_size, shift=not sp.issparse(init_data))
        log.info("number of center slices 1")
        reporter.metrics(stats.metrics(), t0, Meta="init_train_data_iter")
        init_ms = (time.time() - t0) * 1000

        update_s = 0.0
        epochs_start = time.time()
        records = 0
        for epoch in range(cfg.epochs):
            epoch_start = time.time()
            state.reset_epoch()
            if epoch == 0:
                stream = _chain(head, (_features(b, "train", cfg.feature_dim) for b in batches), stats)
                update_s += _consume(state, stream, cfg, arrays)
            else:
                stats.reset()
                with _Prefetch(channel.batches(cfg.mini_batch_size, epoch)) as later:
                    stream = _chain([], (_features(b, "train", cfg.feature_dim) for b in later), stats)
                    update_s += _consume(state, stream, cfg, arrays)
            records += state.rows
            elapsed = time.time() - epoch_start
            log.info(f"processed a total of {state.rows} examples")
            reporter.metrics(stats.metrics(), epoch_start, epoch=epoch, Meta="training_data_iter")
            reporter.progress(round(100.0 * (epoch + 1) / cfg.epochs, 2))
            reporter.throughput(round(state.rows / max(elapsed, 1e-9), 2))
        epochs_ms = (time.time() - epochs_start) * 1000

    # Finalize: shrink the K weighted centers into k by weighted local Lloyd, best of the trials.
    finalize_start = time.time()
    centers, counts = state.host_state()
    within = state.within_ssd()
    if cluster.size > 1:
        centers, counts, within = _merge_states(cluster, centers, counts, within, state.rows, cfg.k, log)
    log.info(f"shrinking {centers.shape[0]} centers into {cfg.k}")
    if cluster.is_first:
        reduction = reduce_centers(
            centers, counts, cfg.k, init=cfg.local_lloyd_init_method, max_iter=cfg.local_lloyd_max_iter,
            tol=cfg.local_lloyd_tol, trials=cfg.local_lloyd_num_trials, seed=SEED,
            on_attempt=lambda i, msd: log.info(f"local kmeans attempt #{i}. Current mean square distance {msd:f}"),
        )
    else:  # the first host shrinks the merged states; the others receive its result below
        reduction = Reduction(np.zeros((cfg.k, state.dim), dtype=np.float32), 0.0, [])
    if cluster.size > 1:
        shared = cluster.broadcast(np.vstack([reduction.centers, np.full((1, state.dim), reduction.msd)]))
        reduction = Reduction(shared[:cfg.k].astype(np.float32), float(shared[cfg.k, 0]), reduction.attempts)
    log.info(f"finished shrinking process. Mean Square Distance = {reduction.msd:g}")
    shrink_ms = (time.time() - finalize_start) * 1000
    # Train msd without another pass over the data (Pipe mode cannot re-read): every streaming center
    # is the weighted mean of the points it took, so the cost of the final centers over that partition
    # is the points' scatter around their streaming center plus the shrink's weighted msd.
    train_msd = within / max(float(counts.sum()), 1e-300) + reduction.msd
    timers = {"initialize.time": init_ms, "update.time": update_s * 1000, "_shrink.time": shrink_ms,
              "finalize.time": (time.time() - finalize_start) * 1000}
    return FitResult(reduction.centers, train_msd, records, timers, epochs_ms)


def _merge_states(cluster: Cluster, centers: np.ndarray, counts: np.ndarray, within: float, rows: int, k: int,
                  log: logging.Logger) -> tuple[np.ndarray, np.ndarray, float]:
    """Every host's weighted centers and counts, in host order (the states are mergeable: the union of
    weighted centers summarises the union of the shards), and the summed within-center scatter."""
    merged = cluster.gather_rows(np.column_stack([centers, counts]))  # [center | count] rows of every host
    within_total, total_rows = cluster.allreduce_sum(np.array([within, rows], dtype=np.float64))
    log.info(f"collected the streaming states of {cluster.size} hosts from the kv store: {merged.shape[0]} "
             f"centers summarising {int(total_rows)} records")
    if total_rows < k:
        raise CustomerError(
            f"The value of k hyperparameter '{k}' is larger than the number of records in the train dataset "
            f"'{int(total_rows)}' (all hosts together). Please set k to at most the number of training records.")
    return merged[:, :-1], merged[:, -1], float(within_total)


def _chain(head: list, rest: Iterable, stats: _IterStats) -> Iterator:
    """The already-read head batches (counted when read), then the rest of the stream (counted here)."""
    yield from head
    for features in rest:
        if features.shape[0]:
            stats.add(features.shape[0])
            yield features


def _consume(state: StreamingKMeans, stream: Iterable, cfg: KMeansConfig, arrays: ArrayModule) -> float:
    """Feed every batch of ``stream`` to ``state``; return the seconds spent in the math."""
    spent = 0.0
    for features in stream:
        t = time.perf_counter()
        state.update(on_device(arrays, features, cfg.force_dense))
        spent += time.perf_counter() - t
    return spent


def evaluate(centers: np.ndarray, channel: Any, cfg: KMeansConfig, arrays: ArrayModule,
             reporter: Reporter, cluster: Cluster | None = None, sharded: bool = False) -> dict[str, float]:
    """msd / ssd of the ``test`` channel against the final centers, streamed batch by batch.

    A ``sharded`` test channel on several hosts is summed over the hosts; a replicated one is whole on each.
    """
    stats = _IterStats()
    start = time.time()
    ssd, rows = 0.0, 0
    with _Prefetch(channel.batches(cfg.mini_batch_size, 0)) as batches:
        for batch in batches:
            features = _features(batch, "test", cfg.feature_dim)
            if features.shape[0] == 0:
                continue
            stats.add(features.shape[0])
            ssd += float(squared_distances(arrays, on_device(arrays, features, cfg.force_dense), centers).sum())
            rows += features.shape[0]
    if cluster is not None and cluster.size > 1 and sharded:
        ssd, rows = (float(v) for v in cluster.allreduce_sum(np.array([ssd, rows], dtype=np.float64)))
    if rows == 0:
        raise CustomerError("No test data found in channel 'test': it holds no records. "
                            "Please provide a non-empty test dataset or remove the test channel.")
    reporter.metrics(stats.metrics(), start, Meta="test_data_iter")
    return {"msd": ssd / rows, "ssd": ssd}


def write_model(env: TrainingEnv, centers: np.ndarray) -> None:
    """``model/model_<current_host>``: an NDArray list with the (k, d) float32 centers, written atomically."""
    from smlocal.artifacts.files import atomic_write_bytes
    from smlocal.artifacts.mxnet_ndarray import dumps_ndarrays

    atomic_write_bytes(env.model_file, dumps_ndarrays([np.ascontiguousarray(centers, dtype=np.float32)]))


def train(env: TrainingEnv) -> None:
    """The whole training job: configuration, channels, streaming, shrink, metrics, model."""
    start = time.time()
    reporter = Reporter(ALGORITHM, env.resources.current_host)
    log = reporter.log
    cfg = configure(env, log)
    apply_log_level(log, cfg.log_level)
    with Cluster.from_env(env) as cluster:  # several hosts: the KVStore; a failure here ends every host
        _train(env, cfg, cluster, reporter, start)


def _train(env: TrainingEnv, cfg: KMeansConfig, cluster: Cluster, reporter: Reporter, start: float) -> None:
    log = reporter.log
    log.info("Process 1 is a worker.")
    log.info("Using default worker.")
    if "train" not in env.channels:
        raise CustomerError("No 'train' channel was provided: k-means needs training data. Please add a "
                            f"'train' channel to the input data configuration (channels given: "
                            f"{sorted(env.channels) or 'none'}).")
    train_channel = _open_channel(env, "train")
    test_channel = _open_channel(env, "test") if "test" in env.channels else None
    config = env.channels["train"]
    log.info(f"Loaded iterator creator {config.content_type} for content type "
             f"('{config.content_type}', '1.0')")
    log.info(f"Create Store: {cluster.store_type}")
    arrays = select_array_module(cfg.num_gpus)
    log.info(f"nvidia-smi identified {nvidia_smi_count()} GPUs.")
    log.info(f"Number of GPUs being used: {arrays.num_gpus}")
    setup_end = time.time()

    result = fit(cfg, train_channel, arrays, reporter, cluster)
    reporter.quality("train", "msd", result.train_msd)

    if test_channel is None:
        log.info("Test data is not provided.")
    else:
        scores = evaluate(result.centers, test_channel, cfg, arrays, reporter, cluster,
                          sharded=env.channels["test"].distribution == "ShardedByS3Key")
        for name in cfg.eval_metrics:
            reporter.score("test", name, scores[name])
            reporter.quality("test", name, scores[name])

    serialize_start = time.time()
    if cluster.is_first:  # one model for the job: model_algo-1
        write_model(env, result.centers)
    timers = {**result.timers, "model.serialize.time": (time.time() - serialize_start) * 1000}
    reporter.metrics({"epochs": float(cfg.epochs), **timers}, start)
    log.info(f"Training finished: {result.records} records in {result.epochs_ms / 1000:.3f} s of epochs.")
    end = time.time()
    reporter.metrics({"totaltime": (end - start) * 1000, "setuptime": (setup_end - start) * 1000}, start, end)
