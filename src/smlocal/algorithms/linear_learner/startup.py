"""How a linear learner job gets ready to train: device, channels, resumed or fresh state, loss, models.

``start_training`` builds the job's ``Training`` in the order the built-in logs it: the store and GPUs,
the checkpoint (or the scaler computed from the first ``num_point_for_scaler`` training rows), then the
``num_models`` models. With several hosts every host starts from the same state: the same resumed
epoch or none, the same number of features, a scaler and class balance computed over all hosts' samples.
"""
from __future__ import annotations

import itertools
import time
from typing import Any, Iterable

import numpy as np
import scipy.sparse as sp

from smlocal.algorithms.cluster import Cluster
from smlocal.algorithms.common.hyperparameters import dimension_error
from smlocal.algorithms.common.memory import check_memory
from smlocal.algorithms.linear_learner.checkpoint import Checkpoints, load_state, state_path
from smlocal.algorithms.linear_learner.config import BINARY, REGRESSOR, LLConfig
from smlocal.algorithms.linear_learner.context import Job, Objective, Training
from smlocal.algorithms.linear_learner.data import BatchSource, Preparer, check_labels, default_cache_budget, peek_rows
from smlocal.algorithms.linear_learner.losses import Loss, make_loss, objective_name
from smlocal.algorithms.linear_learner.model import ParallelLinear
from smlocal.algorithms.linear_learner.optim import ParallelOptimizer
from smlocal.algorithms.linear_learner.scaler import Scaler, describe
from smlocal.algorithms.linear_learner.selection import EarlyStopping, criterion_for
from smlocal.algorithms.linear_learner.state import State, from_checkpoint, start_state
from smlocal.algorithms.linear_learner.sync import GradientSync
from smlocal.arrays import ArrayModule, nvidia_smi_count, select_array_module
from smlocal.errors import CustomerError

CHANNELS = ("train", "validation", "test")


def start_training(job: Job, cluster: Cluster) -> tuple[Training, Iterable | None]:
    """The job's ``Training``, and the first epoch's raw train batches when reading the scaler sample
    opened them (None when resumed from a checkpoint)."""
    cfg = job.cfg
    job.log.info("Process 1 is a worker.")
    arrays = _arrays(job, cluster)
    sources = _sources(job, arrays)
    checkpoints = Checkpoints.for_job(job.env.paths.checkpoint_dir, job.env.hyperparameters)
    state, first_raw = _start_state(job, cluster, sources["train"], checkpoints)
    preparer = Preparer(arrays, state.scaler, cfg.predictor_type, cfg.num_classes, cfg.feature_dim,
                        state.class_weights)
    for source in sources.values():
        source.prepare = preparer
    objective = _objective(cfg, state.scaler)
    early = EarlyStopping(cfg.early_stopping_patience, cfg.early_stopping_tolerance, objective.criterion.maximize)
    if state.early:
        early.load(state.early)
    model = _model(cfg, state, arrays, cluster, objective.train_loss)
    training = Training(job=job, cluster=cluster, arrays=arrays, sources=sources, checkpoints=checkpoints,
                        state=state, objective=objective, early=early, model=model)
    return training, first_raw


def _arrays(job: Job, cluster: Cluster) -> ArrayModule:
    job.log.info(f"Create Store: {cluster.store_type}")
    job.log.info(f"nvidia-smi identified {nvidia_smi_count()} GPUs.")
    arrays = select_array_module(job.cfg.num_gpus)
    job.log.info(f"Number of GPUs being used: {arrays.num_gpus}")
    return arrays


def _sources(job: Job, arrays: ArrayModule) -> dict[str, BatchSource]:
    from smlocal.data.channels import open_channel  # the data plane

    channels = job.env.channels
    if "train" not in channels:
        raise CustomerError("Labeled train data required: the 'train' channel is missing from "
                            "inputdataconfig.json. Provide a train channel with labeled records.")
    for name in channels:
        if name not in CHANNELS:
            job.log.warning(f"Ignoring channel '{name}': linear learner reads 'train', 'validation', 'test'.")
    cached = [name for name in CHANNELS if name in channels and name != "test"]
    budget = default_cache_budget(arrays.device_free_bytes(), len(cached))
    return {name: BatchSource(open_channel(job.env, name), name, job.cfg.mini_batch_size, channels[name].is_pipe,
                              cache_budget=budget if name in cached else 0)
            for name in CHANNELS if name in channels}


def _start_state(job: Job, cluster: Cluster, train: BatchSource,
                 checkpoints: Checkpoints) -> tuple[State, Iterable | None]:
    """Resume from /opt/ml/checkpoints, or read the scaler sample and start afresh."""
    resumed = _resumed_state(job, cluster, checkpoints)
    if resumed is not None:
        job.log.info(f"Loaded checkpoint from \"{state_path(checkpoints.directory)}\": {resumed.epochs_done} "
                     f"epoch(s) already trained; resuming at epoch {resumed.epochs_done}.")
        return resumed, None
    return _fresh_state(job, cluster, train)


def _resumed_state(job: Job, cluster: Cluster, checkpoints: Checkpoints) -> State | None:
    """The saved state of this job's hyperparameters, if every host holds one of the same epoch."""
    resumed = None
    if checkpoints.enabled:
        saved = load_state(checkpoints.directory)
        if saved is not None and saved[0].get("fingerprint") == checkpoints.job_id:
            resumed = from_checkpoint(*saved)
        elif saved is not None:
            job.log.info(f"Ignoring the checkpoint in {checkpoints.directory}: it was saved for other "
                         f"hyperparameters.")
    else:
        job.log.info("Checkpoint loading and saving are disabled.")
    if cluster.size > 1:  # every host resumes the same epoch, or every host starts afresh
        done = cluster.allgather(np.array([resumed.epochs_done if resumed is not None else -1])).ravel()
        if len(set(done.tolist())) > 1:
            if resumed is not None:
                job.log.info("Not every host holds a checkpoint of the same epoch: starting afresh.")
            resumed = None
    return resumed


def _fresh_state(job: Job, cluster: Cluster, train: BatchSource) -> tuple[State, Iterable]:
    """The initial state from the scaler sample, and the first epoch's batches (the sample first)."""
    cfg = job.cfg
    raw = train.raw_pass()
    head = peek_rows(raw, cfg.num_point_for_scaler)
    if not head:
        raise CustomerError("No training data found in channel 'train'. Provide at least one labeled record.")
    labels = _sample_labels(cfg, cluster, head)
    _check_memory(cfg, int(head[0].features.shape[1]), any(sp.issparse(b.features) for b in head))
    started = time.time()
    state = start_state(cfg, [b.features for b in head], labels,
                        allreduce=cluster.allreduce_sum if cluster.size > 1 else None)
    rows = min(len(labels), cfg.num_point_for_scaler)
    job.reporter.metrics({"Total Records Seen": rows, "Total Batches Seen": len(head),
                          "Max Records Seen Between Resets": rows, "Reset Count": 1}, started,
                         Meta="init_train_data_iter")
    job.log.info(f"Scaling model computed with parameters: "
                 f"{describe(state.scaler, cfg.predictor_type == REGRESSOR)}")
    for note in state.notes:
        job.log.info(note)
    return state, itertools.chain(head, raw)  # the sample is the start of the first epoch


def _check_memory(cfg: LLConfig, d: int, sparse: bool) -> None:
    """Refuse a feature_dim whose models cannot fit: every model's (d + 1) x outputs weights, drawn in
    float64, then float32 with the gradient, two optimizer moments and copies for the best model and
    checkpoints; dense data adds a mini-batch as read, normalised and on the device."""
    models = (d + 1) * cfg.num_models * cfg.outputs * (8 + 4 * 6)
    batch = 0 if sparse else cfg.mini_batch_size * d * 4 * 3
    shown = cfg.feature_dim if cfg.feature_dim != "auto" else f"auto (the data's {d})"
    check_memory(models + batch, f"feature_dim={shown} with num_models={cfg.num_models} x {cfg.outputs} output(s)"
                 + ("" if sparse else f" and mini_batch_size={cfg.mini_batch_size} dense rows"),
                 "Set feature_dim to the number of features in the data, or lower num_models.")


def _sample_labels(cfg: LLConfig, cluster: Cluster, head: list[Any]) -> np.ndarray:
    """The checked labels of the scaler sample, once its number of features is the same in every batch,
    on every host and as ``feature_dim`` says."""
    d = int(head[0].features.shape[1])
    if cluster.size > 1:
        dims = cluster.allgather(np.array([d])).ravel()
        if len(set(dims.tolist())) > 1:
            found = ", ".join(f"{h}: {int(n)}" for h, n in zip(cluster.hosts, dims, strict=True))
            raise CustomerError(f"The train data of the hosts have different numbers of features ({found}). "
                                "Give every file of the train channel the same features.")
    shown = cfg.feature_dim if cfg.feature_dim != "auto" else d
    for batch in head:
        if batch.features.shape[1] != d or (cfg.feature_dim != "auto" and d != cfg.feature_dim):
            raise dimension_error("train", shown, int(batch.features.shape[1]))
    return np.concatenate([check_labels(b.labels, cfg.predictor_type, cfg.num_classes, "train") for b in head])


def _objective(cfg: LLConfig, scaler: Scaler) -> Objective:
    loss = make_loss(cfg.loss, margin=cfg.margin, quantile=cfg.quantile,
                     loss_insensitivity=cfg.loss_insensitivity, huber_delta=cfg.huber_delta)
    name = objective_name(cfg.predictor_type, cfg.loss)
    criterion = criterion_for(cfg.predictor_type, cfg.criteria, name, loss=cfg.loss, beta=cfg.f_beta,
                              target_recall=cfg.target_recall, target_precision=cfg.target_precision)
    return Objective(train_loss=loss.in_units(scaler.label_std),  # training sees normalised labels
                     factor=scaler.label_std ** loss.degree, name=name, criterion=criterion)


def _model(cfg: LLConfig, state: State, arrays: ArrayModule, cluster: Cluster, train_loss: Loss) -> ParallelLinear:
    """All ``num_models`` models in one parameter matrix, each with its own optimizer hyperparameters."""
    xp = arrays.xp
    optimizer = ParallelOptimizer(xp, cfg.optimizer, state.P.shape, state.spread.columns(cfg.outputs),
                                  use_scheduler=cfg.use_lr_scheduler, bias_lr_mult=cfg.bias_lr_mult,
                                  bias_wd_mult=cfg.bias_wd_mult, use_bias=cfg.use_bias, beta_1=cfg.beta_1,
                                  beta_2=cfg.beta_2)
    if state.opt_arrays is not None:
        optimizer.load_state(state.t, state.opt_arrays)
    sync = GradientSync(cluster, xp, state.P.shape) if cluster.size > 1 else None
    return ParallelLinear(xp, xp.asarray(state.P.astype(np.float32)), cfg.num_models, cfg.outputs, train_loss,
                          optimizer, pos_weight=state.spread.pos_weight if cfg.predictor_type == BINARY else None,
                          shift=state.scaler.shift, sync=sync)
