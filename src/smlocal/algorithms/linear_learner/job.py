"""The linear learner training job (``linear-learner:1``): ``train(env)``, which ``container/train`` calls.

The job, as the SageMaker developer guide's "How Linear Learner Works" describes it: read the
hyperparameters (``config``), compute the scaler from the first ``num_point_for_scaler`` training rows
and start ``num_models`` linear models (``startup``), train them in parallel for up to ``epochs`` passes,
ranking them each epoch by the selection criterion on the validation channel (or on the training
pass) and stopping early (``epochs``), then calibrate the chosen binary model's threshold, report the
final validation and test metrics and write ``model/model_<host>`` with the scaler folded into the
weights (``final``). The math lives in the other modules of this package.

Several hosts (resourceconfig.json) train data-parallel over the KVStore: merged scaler statistics,
one synchronised step of all models per mini-batch, per-epoch statistics summed over the hosts
(``sync``); only the first host writes the model.
"""
from __future__ import annotations

import contextlib
import time
from contextlib import AbstractContextManager
from dataclasses import replace
from logging import Logger

from smlocal.algorithms.cluster import Cluster, join_cluster
from smlocal.algorithms.common.reporting import Reporter
from smlocal.algorithms.common.threads import limit_blas_threads
from smlocal.algorithms.linear_learner import config as ll_config
from smlocal.algorithms.linear_learner.config import SCHEMA, LLConfig, parsed_values, resolve
from smlocal.algorithms.linear_learner.context import Job
from smlocal.algorithms.linear_learner.epochs import train_epochs
from smlocal.algorithms.linear_learner.final import finalize
from smlocal.algorithms.linear_learner.startup import start_training
from smlocal.arrays import ArrayModule
from smlocal.environment import TrainingEnv
from smlocal.errors import CustomerError
from smlocal.logs import apply_log_level

__all__ = ["configure", "run", "train"]

ALGORITHM = "Linear Learner"
SMALL_STEP_FLOPS = 50_000_000  # per-batch products up to this size run on one BLAS thread


def train(env: TrainingEnv) -> None:
    job = configure(env)  # the hyperparameters are checked before any host joins a cluster
    with join_cluster(env) as cluster:  # several hosts: the KVStore; a failure here ends every host
        run(job, cluster)


def configure(env: TrainingEnv) -> Job:
    """The job's ``Job``: its hyperparameters read, logged and checked (``CustomerError`` if wrong)."""
    reporter = Reporter(ALGORITHM, env.resources.current_host)
    started = time.time()
    cfg = _read_hyperparameters(env, reporter.log)
    apply_log_level(reporter.log, cfg.log_level)
    return Job(env=env, cfg=cfg, reporter=reporter, started=started)


def _read_hyperparameters(env: TrainingEnv, log: Logger) -> LLConfig:
    given = dict(env.hyperparameters)
    log.info(f"Reading default configuration from {ll_config.__name__}: {SCHEMA.defaults()}")
    log.info(f"Merging with provided configuration from {env.paths.config_dir / 'hyperparameters.json'}: {given}")
    cfg = resolve(given)
    if str(given.get("_tuning_objective_metric", "")).strip() and cfg.num_models != 1:
        log.info("Automatic model tuning is on (_tuning_objective_metric): training 1 model.")
        cfg = replace(cfg, num_models=1)
    log.info(f"Final configuration: {parsed_values(given)}")
    return cfg


def run(job: Job, cluster: Cluster) -> None:
    """Set up, train every epoch, and finalize the model on this host of ``cluster``."""
    reporter, cfg = job.reporter, job.cfg
    training, first_raw = start_training(job, cluster)
    reporter.metrics({"setuptime": (time.time() - job.started) * 1000.0}, job.started)
    P = training.model.P
    with _blas_threads(training.arrays, cfg.mini_batch_size * P.shape[0] * P.shape[1]):
        train_epochs(training, first_raw)
    if training.state.best is None:
        raise CustomerError("No epoch was trained: check the epochs hyperparameter.")
    reporter.metrics({"epochs": float(cfg.epochs), "update.time": (time.time() - job.started) * 1000.0},
                     job.started)
    finalize(training)


def _blas_threads(arrays: ArrayModule, flops_per_step: int) -> AbstractContextManager:
    """One BLAS thread for small per-batch products: threading them costs more than it gains (and the
    host's cores are often shared); large ones keep the library's default."""
    if arrays.is_gpu or flops_per_step > SMALL_STEP_FLOPS:
        return contextlib.nullcontext()
    return limit_blas_threads(1)
