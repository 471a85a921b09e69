"""SageMaker's built-in linear learner (``linear-learner:1``): ``train(env)`` for ``container/train``.

The job (spec §2.3): read the hyperparameters (``SCHEMA``), compute the scaler from the first
``num_point_for_scaler`` training rows, train ``num_models`` linear models in parallel for up to
``epochs`` passes (``ll_model``), rank them each epoch by the selection criterion on the validation
channel (or on the training pass), stop early, calibrate the chosen binary model's threshold, report the
final validation and test metrics, and write ``model/model_<host>`` with the scaler folded into the
weights. The math lives in the ``ll_*`` modules; this one wires them to the channels, the log and files.

Several hosts (resourceconfig.json) train data-parallel over the KVStore (``distributed``): merged
scaler statistics, one synchronised step of all models per mini-batch, per-epoch statistics summed
over the hosts (``ll_sync``); only the first host writes the model.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import time
from dataclasses import replace
from typing import Any, Iterable

import numpy as np

from smlocal.algorithms.linear_learner import config as ll_config
from smlocal.algorithms.cluster.kvstore import Cluster
from smlocal.algorithms.linear_learner.checkpoint import fingerprint, load_state, save_state, state_path
from smlocal.algorithms.linear_learner.config import BINARY, MULTICLASS, REGRESSOR, SCHEMA, LLConfig, parsed_values, resolve
from smlocal.algorithms.common.hyperparameters import dimension_error
from smlocal.algorithms.linear_learner.data import BatchSource, Preparer, check_labels, default_cache_budget, peek_rows
from smlocal.algorithms.linear_learner.losses import make_loss, objective_name
from smlocal.algorithms.linear_learner.metrics import binary_metrics, multiclass_metrics, regression_metrics
from smlocal.algorithms.linear_learner.model import EpochStats, ParallelLinear
from smlocal.algorithms.linear_learner.optim import ParallelOptimizer
from smlocal.algorithms.linear_learner.scaler import describe
from smlocal.algorithms.linear_learner.selection import EarlyStopping, criterion_for, tune_threshold
from smlocal.algorithms.linear_learner.state import Best, State, from_checkpoint, start_state, to_checkpoint
from smlocal.algorithms.linear_learner.sync import GradientSync, merge_stats
from smlocal.algorithms.common.reporting import Reporter
from smlocal.logs import apply_log_level
from smlocal.arrays import ArrayModule, nvidia_smi_count, select_array_module, to_numpy
from smlocal.environment import TrainingEnv
from smlocal.errors import CustomerError

__all__ = ["SCHEMA", "train"]

ALGORITHM = "Linear Learner"
CHANNELS = ("train", "validation", "test")


def train(env: TrainingEnv) -> None:
    job = _Job(env)  # the hyperparameters are checked before any host joins a cluster
    with Cluster.from_env(env) as cluster:  # several hosts: the KVStore; a failure here ends every host
        job.run(cluster)


class _Job:
    def __init__(self, env: TrainingEnv):
        self.env = env
        self.reporter = Reporter(ALGORITHM, env.resources.current_host)
        self.log = self.reporter.log
        self.host = env.resources.current_host
        self.started = time.time()
        self.cfg = self._configure()
        apply_log_level(self.log, self.cfg.log_level)

    # ------------------------------------------------------------------ setup
    def _configure(self) -> LLConfig:
        given = dict(self.env.hyperparameters)
        self.log.info(f"Reading default configuration from {ll_config.__name__}: {SCHEMA.defaults()}")
        self.log.info(f"Merging with provided configuration from "
                      f"{self.env.paths.config_dir / 'hyperparameters.json'}: {given}")
        cfg = resolve(given)
        if str(given.get("_tuning_objective_metric", "")).strip() and cfg.num_models != 1:
            self.log.info("Automatic model tuning is on (_tuning_objective_metric): training 1 model.")
            cfg = replace(cfg, num_models=1)
        self.log.info(f"Final configuration: {parsed_values(given)}")
        return cfg

    def _arrays(self) -> ArrayModule:
        self.log.info(f"Create Store: {self.cluster.store_type}")
        self.log.info(f"nvidia-smi identified {nvidia_smi_count()} GPUs.")
        arrays = select_array_module(self.cfg.num_gpus)
        self.log.info(f"Number of GPUs being used: {arrays.num_gpus}")
        return arrays

    def _sources(self, arrays: ArrayModule) -> dict[str, BatchSource]:
        from smlocal.data.channels import open_channel  # the data plane

        if "train" not in self.env.channels:
            raise CustomerError("Labeled train data required: the 'train' channel is missing from "
                                "inputdataconfig.json. Provide a train channel with labeled records.")
        for name in self.env.channels:
            if name not in CHANNELS:
                self.log.warning(f"Ignoring channel '{name}': linear learner reads 'train', 'validation', 'test'.")
        cached = [name for name in CHANNELS if name in self.env.channels and name != "test"]
        budget = default_cache_budget(arrays.device_free_bytes(), len(cached))
        return {name: BatchSource(open_channel(self.env, name), name, self.cfg.mini_batch_size,
                                  self.env.channels[name].is_pipe, cache_budget=budget if name in cached else 0)
                for name in CHANNELS if name in self.env.channels}

    def _start(self) -> tuple[State, Iterable | None]:
        """Resume from /opt/ml/checkpoints, or read the scaler sample and start afresh."""
        resumed = None
        if self.checkpoints:
            saved = load_state(self.ckpt_dir)
            if saved is not None and saved[0].get("fingerprint") == self.job_id:
                resumed = from_checkpoint(*saved)
            elif saved is not None:
                self.log.info(f"Ignoring the checkpoint in {self.ckpt_dir}: it was saved for other hyperparameters.")
        else:
            self.log.info("Checkpoint loading and saving are disabled.")
        if self.cluster.size > 1:  # every host resumes the same epoch, or every host starts afresh
            done = self.cluster.allgather(np.array([resumed.epochs_done if resumed is not None else -1])).ravel()
            if len(set(done.tolist())) > 1:
                if resumed is not None:
                    self.log.info("Not every host holds a checkpoint of the same epoch: starting afresh.")
                resumed = None
        if resumed is not None:
            self.log.info(f"Loaded checkpoint from \"{state_path(self.ckpt_dir)}\": {resumed.epochs_done} epoch(s) "
                          f"already trained; resuming at epoch {resumed.epochs_done}.")
            return resumed, None
        cfg = self.cfg
        raw = self.sources["train"].raw_pass()
        head = peek_rows(raw, cfg.num_point_for_scaler)
        if not head:
            raise CustomerError("No training data found in channel 'train'. Provide at least one labeled record.")
        d = int(head[0].features.shape[1])
        if self.cluster.size > 1:
            dims = self.cluster.allgather(np.array([d])).ravel()
            if len(set(dims.tolist())) > 1:
                found = ", ".join(f"{h}: {int(n)}" for h, n in zip(self.cluster.hosts, dims, strict=True))
                raise CustomerError(f"The train data of the hosts have different numbers of features ({found}). "
                                    "Give every file of the train channel the same features.")
        shown = cfg.feature_dim if cfg.feature_dim != "auto" else d
        for batch in head:
            if batch.features.shape[1] != d or (cfg.feature_dim != "auto" and d != cfg.feature_dim):
                raise dimension_error("train", shown, int(batch.features.shape[1]))
        labels = np.concatenate([check_labels(b.labels, cfg.predictor_type, cfg.num_classes, "train")
                                 for b in head])
        started = time.time()
        state = start_state(cfg, [b.features for b in head], labels,
                            allreduce=self.cluster.allreduce_sum if self.cluster.size > 1 else None)
        rows = min(len(labels), cfg.num_point_for_scaler)
        self.reporter.metrics({"Total Records Seen": rows, "Total Batches Seen": len(head),
                               "Max Records Seen Between Resets": rows, "Reset Count": 1}, started,
                              Meta="init_train_data_iter")
        self.log.info(f"Scaling model computed with parameters: "
                      f"{describe(state.scaler, cfg.predictor_type == REGRESSOR)}")
        for note in state.notes:
            self.log.info(note)
        return state, itertools.chain(head, raw)  # the sample is the start of the first epoch

    def _model(self, arrays: ArrayModule) -> ParallelLinear:
        cfg, state, xp = self.cfg, self.state, arrays.xp
        optimizer = ParallelOptimizer(xp, cfg.optimizer, state.P.shape, state.spread.columns(cfg.outputs),
                                      use_scheduler=cfg.use_lr_scheduler, bias_lr_mult=cfg.bias_lr_mult,
                                      bias_wd_mult=cfg.bias_wd_mult, use_bias=cfg.use_bias, beta_1=cfg.beta_1,
                                      beta_2=cfg.beta_2)
        if state.opt_arrays is not None:
            optimizer.load_state(state.t, state.opt_arrays)
        sync = GradientSync(self.cluster, xp, state.P.shape) if self.cluster.size > 1 else None
        return ParallelLinear(xp, xp.asarray(state.P.astype(np.float32)), cfg.num_models, cfg.outputs,
                              self.train_loss, optimizer,
                              pos_weight=state.spread.pos_weight if cfg.predictor_type == BINARY else None,
                              shift=state.scaler.shift, sync=sync)

    # ------------------------------------------------------------------ run
    def run(self, cluster: Cluster) -> None:
        cfg, self.cluster = self.cfg, cluster
        self.log.info("Process 1 is a worker.")
        arrays = self._arrays()
        self.sources = self._sources(arrays)
        self.ckpt_dir = self.env.paths.checkpoint_dir
        self.checkpoints = self.ckpt_dir.is_dir()
        self.job_id = fingerprint(self.env.hyperparameters)
        self.state, first_raw = self._start()
        scaler = self.state.scaler
        preparer = Preparer(arrays, scaler, cfg.predictor_type, cfg.num_classes, cfg.feature_dim,
                            self.state.class_weights)
        for source in self.sources.values():
            source.prepare = preparer
        loss = make_loss(cfg.loss, margin=cfg.margin, quantile=cfg.quantile,
                         loss_insensitivity=cfg.loss_insensitivity, huber_delta=cfg.huber_delta)
        self.train_loss = loss.in_units(scaler.label_std)  # training sees normalised labels
        self.factor = scaler.label_std ** loss.degree  # normalised loss -> the label's units
        self.objective = objective_name(cfg.predictor_type, cfg.loss)
        self.criterion = criterion_for(cfg.predictor_type, cfg.criteria, self.objective, loss=cfg.loss,
                                       beta=cfg.f_beta, target_recall=cfg.target_recall,
                                       target_precision=cfg.target_precision)
        self.early = EarlyStopping(cfg.early_stopping_patience, cfg.early_stopping_tolerance,
                                   self.criterion.maximize)
        if self.state.early:
            self.early.load(self.state.early)
        model = self._model(arrays)
        self.reporter.metrics({"setuptime": (time.time() - self.started) * 1000.0}, self.started)
        with _blas_threads(arrays, cfg.mini_batch_size * model.P.shape[0] * model.P.shape[1]):
            self._train_epochs(model, first_raw)
        if self.state.best is None:
            raise CustomerError("No epoch was trained: check the epochs hyperparameter.")
        self.reporter.metrics({"epochs": float(cfg.epochs), "update.time": (time.time() - self.started) * 1000.0},
                              self.started)
        self._finalize(arrays)

    def _train_epochs(self, model: ParallelLinear, first_raw: Iterable | None) -> None:
        cfg, state = self.cfg, self.state
        train, validation = self.sources["train"], self.sources.get("validation")
        binary = cfg.predictor_type == BINARY
        while state.epochs_done < cfg.epochs and not state.stopped:
            epoch, ep_start = state.epochs_done, time.time()
            train_stats = EpochStats(model.xp, model.M, self.criterion, self.factor, binary=binary and not validation)
            for batch in train.prepared_pass(first_raw):
                Sv, L = model.train_step(batch)
                train_stats.add(Sv, batch.y, L)
            while model.sync is not None and model.idle_step():
                pass  # this host's shard is done: step with the hosts that still have rows
            first_raw = None
            train_time = time.time() - ep_start
            local_rows = train_stats.rows
            val_stats = None
            if validation is not None:
                val_stats = EpochStats(model.xp, model.M, self.criterion, self.factor, binary=binary)
                for batch in validation.prepared_pass():
                    Sv, L = model.evaluate(batch)
                    val_stats.add(Sv, batch.y, L)
            if self.cluster.size > 1:  # rank, select and stop on every host's numbers, alike everywhere
                for stats in (train_stats, val_stats):
                    if stats is not None:
                        merge_stats(stats, self.cluster)
            self._end_epoch(epoch, ep_start, model, train_stats, val_stats)
            self.reporter.progress(100.0 * (epoch + 1) / cfg.epochs)
            self.reporter.throughput(round(local_rows / max(train_time, 1e-9), 2))
            state.epochs_done = epoch + 1
            state.stopped = self.early.should_stop
            if self.checkpoints:
                self._save_checkpoint(model)
            if state.stopped:
                self.log.info("Early stop condition met. Stopping training.")

    def _end_epoch(self, epoch: int, ep_start: float, model: ParallelLinear, train_stats: EpochStats,
                   val_stats: EpochStats | None) -> None:
        """Log the epoch's metrics, rank the models, keep the best one, update early stopping."""
        end, criterion, objective = time.time(), self.criterion, self.objective
        train_obj = train_stats.objective()
        val_obj = val_stats.objective() if val_stats is not None else None
        values, _ = (val_stats or train_stats).criterion_values()
        m = criterion.best_index(values)
        value = float(values[m])
        for i in range(model.M):
            entry = {f"train_{objective}": float(train_obj[i])}
            if val_obj is not None:
                entry[f"validation_{objective}"] = float(val_obj[i])
            self.reporter.metrics(entry, ep_start, end, epoch=epoch, model=i)
        self.reporter.quality("train", objective, train_obj[m], "loss", epoch=epoch)
        if val_obj is not None:
            self.reporter.quality("validation", objective, val_obj[m], "loss", epoch=epoch)
        self.log.info(f"#early_stopping_criteria_metric: host={self.host}, epoch={epoch}, "
                      f"criteria={criterion.name}, value={value!r}")
        improved = self.early.update(value)
        best = self.state.best
        if best is None or criterion.better(value, best.value):
            self.state.best = Best(epoch=epoch, model=m, value=value, block=model.model_block(m))
        if improved:
            self.log.info(f"Epoch {epoch}: Loss improved. Updating best model")
        else:
            self.log.info(f"Epoch {epoch}: Loss has not improved for {self.early.bad_epochs} epoch(s).")

    def _save_checkpoint(self, model: ParallelLinear) -> None:
        state = self.state
        meta, arrays = to_checkpoint(state, model.P, model.opt.t, model.opt.state_arrays(), self.early.state(),
                                     state.epochs_done, state.stopped, self.job_id)
        try:
            path = save_state(self.ckpt_dir, meta, arrays)
        except OSError as exc:  # a full or read-only checkpoint volume must not kill the training
            self.log.warning(f"Could not save the checkpoint in {self.ckpt_dir}: {exc}")
            return
        self.log.info(f"Saved checkpoint to \"{path}\"")

    # ------------------------------------------------------------------ final model
    def _collect(self, source: BatchSource, single: ParallelLinear,
                 limit: int | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """The chosen model's served scores (n, C), the raw labels, and its mean objective over a pass
        (or over the first ``limit`` rows)."""
        scores, labels, loss_sum, rows = [], [], 0.0, 0
        batches = source.prepared_pass()
        try:
            for batch in batches:
                Sv, L = single.evaluate(batch)
                s = to_numpy(Sv).reshape(len(batch), -1).astype(np.float64)
                y, Lh = batch.y_raw, to_numpy(L).reshape(-1).astype(np.float64)
                if limit is not None and rows + len(y) > limit:
                    keep = limit - rows
                    s, y, Lh = s[:keep], y[:keep], Lh[:keep]
                scores.append(s)
                labels.append(y)
                loss_sum += float(Lh.sum())
                rows += len(y)
                if limit is not None and rows >= limit:
                    break
        finally:
            batches.close()
        raw = np.concatenate(scores) if scores else np.zeros((0, self.cfg.outputs))
        y = np.concatenate(labels) if labels else np.zeros(0, dtype=np.float32)
        if self.cluster.size > 1 and self.env.channels[source.name].distribution == "ShardedByS3Key":
            raw, y = self.cluster.gather_rows(raw), self.cluster.gather_rows(y)  # every host's shard, host order
            loss_sum, rows = (float(v) for v in self.cluster.allreduce_sum(np.array([loss_sum, rows], np.float64)))
            if limit is not None:
                raw, y = raw[:limit], y[:limit]
        served = _link(raw, self.cfg, self.state.scaler)
        return served, y, loss_sum / max(rows, 1)

    def _final_metrics(self, scores, labels, mean_loss: float, threshold: float):
        cfg, objective = self.cfg, (self.objective, mean_loss * self.factor)
        if cfg.predictor_type == BINARY:
            return binary_metrics(scores[:, 0], labels, threshold, cfg.f_beta, objective)
        if cfg.predictor_type == MULTICLASS:
            return multiclass_metrics(scores, labels, cfg.num_classes, cfg.accuracy_top_k, cfg.f_beta, objective)
        return regression_metrics(scores[:, 0], labels, objective)

    def _report(self, split: str, metrics) -> None:
        for name, value, kind in metrics:
            self.reporter.score(split, name, value)
            self.reporter.quality(split, name, value, kind)

    def _finalize(self, arrays: ArrayModule) -> None:
        from smlocal.artifacts.files import atomic_write_bytes
        from smlocal.artifacts.linear_learner import LinearLearnerModel, dumps_linear_learner

        fin_start = time.time()
        cfg, state, best, criterion = self.cfg, self.state, self.state.best, self.criterion
        xp, C = arrays.xp, cfg.outputs
        single = ParallelLinear(xp, xp.asarray(best.block), 1, C, self.train_loss, shift=state.scaler.shift)
        threshold = 0.0 if cfg.loss == "hinge_loss" else 0.5
        val = self._collect(self.sources["validation"], single) if "validation" in self.sources else None
        if cfg.predictor_type == BINARY and criterion.kind == "threshold":
            n = cfg.num_calibration_samples
            if val is not None:
                cal_scores, cal_labels = val[0][:n], val[1][:n]
            else:
                cal_scores, cal_labels, _ = self._collect(self.sources["train"], single, limit=n)
            threshold, value = tune_threshold(cal_scores[:, 0], cal_labels, criterion)
            self.log.info(f"Calibrated the decision threshold on {len(cal_labels)} "
                          f"{'validation' if val is not None else 'train'} records: threshold={threshold!r}, "
                          f"{criterion.criteria}={value!r}")
        if val is not None:
            self._report("validation", self._final_metrics(*val, threshold))
        chosen = state.spread.describe(best.model, cfg.optimizer,
                                       with_pos_weight=cfg.positive_example_weight_mult == "auto")
        self.log.info(f"Best model found for hyperparameters: {json.dumps(chosen)}")
        self.log.info(f"Selected model {best.model} of epoch {best.epoch} ({criterion.name}={best.value!r})")
        if "test" in self.sources:
            self._report("test", self._final_metrics(*self._collect(self.sources["test"], single), threshold))
        d = best.block.shape[0] - 1
        w_raw, b_raw = state.scaler.fold(best.block[:d], best.block[d])
        ser_start = time.time()
        artifact = LinearLearnerModel(
            weight=w_raw.astype(np.float32), bias=b_raw.reshape(1, C).astype(np.float32),
            predictor_type=cfg.predictor_type, threshold=threshold, loss_type=cfg.loss,
            metrics_params=metrics_params(cfg, threshold, float(state.spread.pos_weight[best.model]),
                                          state.class_weights))
        if self.cluster.is_first:  # one model for the job: model_algo-1
            path = atomic_write_bytes(self.env.model_file, dumps_linear_learner(artifact))
            self.log.info(f"Saved model to \"{path}\"")
        now = time.time()
        self.reporter.metrics({"finalize.time": (ser_start - fin_start) * 1000.0,
                               "model.serialize.time": (now - ser_start) * 1000.0,
                               "totaltime": (now - self.started) * 1000.0}, fin_start, now)


def _blas_threads(arrays: ArrayModule, flops_per_step: int):
    """One BLAS thread for small per-batch products: threading them costs more than it gains (and the
    host's cores are often shared); large ones keep the library's default."""
    if arrays.is_gpu or flops_per_step > 50_000_000:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits  # a scikit-learn dependency
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _link(raw: np.ndarray, cfg: LLConfig, scaler) -> np.ndarray:
    """Linear outputs (n, C) in normalised space -> the served score (spec §2.4)."""
    if cfg.predictor_type == MULTICLASS:
        z = raw - raw.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    if cfg.predictor_type == BINARY:
        if cfg.loss == "hinge_loss":
            return raw
        return np.exp(-np.logaddexp(0.0, -raw))
    return raw * scaler.label_std + scaler.label_mean


def metrics_params(cfg: LLConfig, threshold: float, pos_weight: float, class_weights) -> dict[str, Any]:
    """``additional-params.json``'s ``metrics_params`` (2023 key order, spec §3.2)."""
    eps = cfg.loss.startswith("eps_insensitive")
    return {
        "quantile": cfg.quantile if cfg.loss == "quantile_loss" else None,
        "huber_delta": cfg.huber_delta if cfg.loss == "huber_loss" else None,
        "margin": cfg.margin if cfg.loss == "hinge_loss" else None,
        "loss_insensitivity": cfg.loss_insensitivity if eps else None,
        "eps_insensitive_loss_type": cfg.loss.split("_")[2] if eps else None,
        "accuracy_top_k": cfg.accuracy_top_k,
        "f_beta": cfg.f_beta if cfg.predictor_type != REGRESSOR else None,
        "positive_example_weight_mult": pos_weight if cfg.predictor_type == BINARY else 1.0,
        "class_weights": None if class_weights is None else [float(c) for c in class_weights],
        "threshold": threshold,
    }
