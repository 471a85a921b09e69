"""What a linear learner job holds: ``Job`` once its hyperparameters are read, ``Training`` while it trains.

Each is built in one place (``job.configure``, ``startup.start_training``) with every field set, so no
step of the job can read something that is not there yet. What changes while training lives inside
the objects they hold: the ``State`` (epochs done, stopped, best model), the models and early stopping.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from smlocal.algorithms.cluster import Cluster
from smlocal.algorithms.common.reporting import Reporter
from smlocal.algorithms.linear_learner.checkpoint import Checkpoints
from smlocal.algorithms.linear_learner.config import LLConfig
from smlocal.algorithms.linear_learner.data import BatchSource
from smlocal.algorithms.linear_learner.losses import Loss
from smlocal.algorithms.linear_learner.model import ParallelLinear
from smlocal.algorithms.linear_learner.selection import Criterion, EarlyStopping
from smlocal.algorithms.linear_learner.state import State
from smlocal.arrays import ArrayModule
from smlocal.environment import TrainingEnv


@dataclass(frozen=True)
class Job:
    """What a job knows once its hyperparameters are read, before any host joins a cluster."""

    env: TrainingEnv
    cfg: LLConfig
    reporter: Reporter
    started: float  # time.time() at the start: setuptime, update.time and totaltime count from here

    @property
    def log(self) -> logging.Logger:
        return self.reporter.log

    @property
    def host(self) -> str:
        return self.env.resources.current_host


@dataclass(frozen=True)
class Objective:
    """The loss the models train on, how its values are reported, and how the models are ranked."""

    train_loss: Loss  # on normalised labels
    factor: float  # a normalised loss times this is the loss in the label's units
    name: str  # the <objective> of the train_<objective> / validation_<objective> metrics
    criterion: Criterion


@dataclass(frozen=True)
class Training:
    """What exists while a job trains and finalizes its model."""

    job: Job
    cluster: Cluster
    arrays: ArrayModule
    sources: dict[str, BatchSource]  # by channel name: train, and validation and test when given
    checkpoints: Checkpoints
    state: State
    objective: Objective
    early: EarlyStopping
    model: ParallelLinear  # all num_models models, trained together

    @property
    def cfg(self) -> LLConfig:
        return self.job.cfg
