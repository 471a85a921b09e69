"""The k-means training job (``kmeans:1``): channels in, the streaming core, the shrink, logs and the model out.

``train(env)`` is what ``container/train`` calls for ``SMLOCAL_ALGORITHM=kmeans``. It reads the
``train`` channel (and ``test`` if given) through the data plane, runs the streaming math of
``kmeans.streaming`` for ``epochs`` passes, shrinks the K = k * extra_center_factor centers to k, logs
the lines the built-in logs (its ``#metrics``, ``#quality_metric``, progress and throughput lines, which
SageMaker's metric regexes read) and writes ``model/model_<host>``: an MXNet NDArray list holding the
(k, feature_dim) float32 centers, the built-in's model format. User mistakes raise ``CustomerError``;
the entry point turns them into ``output/failure`` and exit code 2.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np
import scipy.sparse as sp

from smlocal.algorithms.cluster import Cluster, join_cluster
from smlocal.algorithms.common.hyperparameters import DimensionMismatch, dimension_error
from smlocal.algorithms.common.reporting import Reporter
from smlocal.algorithms.common.threads import limit_blas_threads, math_threads_beside_reader, usable_cores
from smlocal.algorithms.kmeans.config import KMeansConfig, configure
from smlocal.algorithms.kmeans.rowsplit import RowSplitter
from smlocal.algorithms.kmeans.streaming import (
    Reduction,
    StreamingKMeans,
    init_centers,
    reduce_centers,
    squared_distances,
    on_device,
)
from smlocal.logs import apply_log_level
from smlocal.arrays import ArrayModule, nvidia_smi_count, select_array_module
from smlocal.environment import TrainingEnv
from smlocal.errors import CustomerError

ALGORITHM = "AWS/KMeansWebscale"
SEED = 0  # fixed: the same input gives the same model


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


def _with_label_hint(exc: DimensionMismatch, env: TrainingEnv) -> CustomerError:
    """``exc``, with a hint when plain text/csv (label_size=1 by default) took a feature for the label."""
    config = env.channels.get(exc.channel)
    if config is None or not config.is_csv or "label_size" in config.content_params or \
            exc.data_dim + 1 != exc.feature_dim:
        return exc
    return CustomerError(
        f"{exc} The data has {exc.feature_dim} columns: text/csv takes the first column as the label "
        "(label_size=1). If the data has no label column, use ContentType 'text/csv;label_size=0'.")


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


def fit(cfg: KMeansConfig, channel: Any, arrays: ArrayModule, reporter: Reporter,
        cluster: Cluster | None = None) -> FitResult:
    """Stream ``epochs`` passes of ``channel`` through the streaming k-means, then shrink to k centers.

    With several hosts (``cluster``) each streams its own shard; their states are merged before the
    shrink, which the first host runs and shares.
    """
    # On a CPU every core assigns a share of each batch's rows, each product on one BLAS thread. The reader
    # thread's decoding is a small part of a pass and fits beside them: on a quiet 2-core host two shares
    # beat one (k=100: 0.41 s against 0.57 s a job; k=10 on 1M rows: 0.41 against 0.53).
    threads = 1 if arrays.is_gpu else usable_cores()
    with limit_blas_threads(math_threads_beside_reader() if arrays.is_gpu else 1), RowSplitter(threads) as splitter:
        return _fit(cfg, channel, arrays, reporter, cluster or Cluster(), splitter)


def _fit(cfg: KMeansConfig, channel: Any, arrays: ArrayModule, reporter: Reporter, cluster: Cluster,
         splitter: RowSplitter) -> FitResult:
    """Init from the first mini-batch, ``epochs`` streaming passes, then the shrink to k centers."""
    log = reporter.log
    stats = _IterStats()
    t0 = time.time()
    with contextlib.closing(channel.batches(cfg.mini_batch_size, 0)) as batches:  # read ahead by the channel
        head, rows = _read_head(batches, cfg, stats)
        _check_head(rows, cfg, cluster, log)
        state = _start(head, rows, cfg, arrays, log)
        state.splitter = splitter
        reporter.metrics(stats.metrics(), t0, Meta="init_train_data_iter")
        init_ms = (time.time() - t0) * 1000
        update_s, records, epochs_ms = _stream_epochs(state, head, batches, channel, cfg, arrays, reporter, stats)

    finalize_start = time.time()
    reduction, within, weight = _shrink(state, cfg, cluster, log)
    shrink_ms = (time.time() - finalize_start) * 1000
    # Train msd without another pass over the data (Pipe mode cannot re-read): every streaming center
    # is the weighted mean of the points it took, so the cost of the final centers over that partition
    # is the points' scatter around their streaming center plus the shrink's weighted msd.
    train_msd = within / max(weight, 1e-300) + reduction.msd
    timers = {"initialize.time": init_ms, "update.time": update_s * 1000, "_shrink.time": shrink_ms,
              "finalize.time": (time.time() - finalize_start) * 1000}
    return FitResult(reduction.centers, train_msd, records, timers, epochs_ms)


def _read_head(batches: Iterator, cfg: KMeansConfig, stats: _IterStats) -> tuple[list, int]:
    """The init data: the first mini-batch (more only if it holds fewer rows than K, e.g. a tiny batch size)."""
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
    return head, rows


def _check_head(rows: int, cfg: KMeansConfig, cluster: Cluster, log: logging.Logger) -> None:
    """Reject an empty train channel or one host's data smaller than k; log an init batch cut short."""
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


def _start(head: list, rows: int, cfg: KMeansConfig, arrays: ArrayModule, log: logging.Logger) -> StreamingKMeans:
    """The streaming state, its K centers (at most one per row read) drawn from the init data."""
    num_centers = min(cfg.num_centers, rows)
    init_data = _stack(head)
    if cfg.force_dense and sp.issparse(init_data):
        init_data = init_data.toarray()
    state = StreamingKMeans.start(init_centers(init_data, num_centers, cfg.init_method, SEED), arrays,
                                  cfg.half_life_time_size, shift=not sp.issparse(init_data))
    log.info("number of center slices 1")
    return state


def _stream_epochs(state: StreamingKMeans, head: list, batches: Iterator, channel: Any, cfg: KMeansConfig,
                   arrays: ArrayModule, reporter: Reporter, stats: _IterStats) -> tuple[float, int, float]:
    """Every pass over the train channel; returns the seconds in the math, the rows and the passes' ms.

    The first pass continues the init's reader (``batches``) after the ``head`` it read; each later pass
    opens the channel again on a reader of its own.
    """
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
            with contextlib.closing(channel.batches(cfg.mini_batch_size, epoch)) as later:
                stream = _chain([], (_features(b, "train", cfg.feature_dim) for b in later), stats)
                update_s += _consume(state, stream, cfg, arrays)
        records += state.rows
        elapsed = time.time() - epoch_start
        reporter.log.info(f"processed a total of {state.rows} examples")
        reporter.metrics(stats.metrics(), epoch_start, epoch=epoch, Meta="training_data_iter")
        reporter.progress(round(100.0 * (epoch + 1) / cfg.epochs, 2))
        reporter.throughput(round(state.rows / max(elapsed, 1e-9), 2))
    return update_s, records, (time.time() - epochs_start) * 1000


def _shrink(state: StreamingKMeans, cfg: KMeansConfig, cluster: Cluster,
            log: logging.Logger) -> tuple[Reduction, float, float]:
    """Shrink the K weighted centers into k by weighted local Lloyd, best of the trials.

    Returns the reduction, the points' scatter around their streaming centers and the centers' total
    weight (over every host's states when there are several).
    """
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
            splitter=state.splitter,
        )
    else:  # the first host shrinks the merged states; the others receive its result below
        reduction = Reduction(np.zeros((cfg.k, state.dim), dtype=np.float32), 0.0, [])
    if cluster.size > 1:
        shared = cluster.broadcast(np.vstack([reduction.centers, np.full((1, state.dim), reduction.msd)]))
        reduction = Reduction(shared[:cfg.k].astype(np.float32), float(shared[cfg.k, 0]), reduction.attempts)
    log.info(f"finished shrinking process. Mean Square Distance = {reduction.msd:g}")
    return reduction, within, float(counts.sum())


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
    with contextlib.closing(channel.batches(cfg.mini_batch_size, 0)) as batches:
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
    with join_cluster(env) as cluster:  # several hosts: the KVStore; a failure here ends every host
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

    try:
        result = fit(cfg, train_channel, arrays, reporter, cluster)
        reporter.quality("train", "msd", result.train_msd)
        if test_channel is None:
            log.info("Test data is not provided.")
            scores = None
        else:
            scores = evaluate(result.centers, test_channel, cfg, arrays, reporter, cluster,
                              sharded=env.channels["test"].distribution == "ShardedByS3Key")
    except DimensionMismatch as exc:
        raise _with_label_hint(exc, env) from None
    if scores is not None:
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
