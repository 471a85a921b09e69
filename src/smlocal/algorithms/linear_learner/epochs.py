"""Linear learner's epoch loop: one pass trains every model, then they are ranked, the best is kept, early
stopping is updated and the state is checkpointed.

Models are ranked by the selection criterion on the validation channel, or on the training pass when
there is none. With several hosts the epoch's statistics are summed over all hosts first, so every host
ranks, keeps and stops alike.
"""
from __future__ import annotations

import time
from typing import Iterable

import numpy as np

from smlocal.algorithms.linear_learner.checkpoint import save_state
from smlocal.algorithms.linear_learner.config import BINARY
from smlocal.algorithms.linear_learner.context import Training
from smlocal.algorithms.linear_learner.model import EpochStats
from smlocal.algorithms.linear_learner.state import Best, to_checkpoint
from smlocal.algorithms.linear_learner.sync import merge_stats

# A training pass of up to this many mini-batches (and bytes) is ranked on the models it ends with,
# evaluated once more on its batches; longer passes are ranked on the losses summed while training.
SHORT_PASS_BATCHES = 8
SHORT_PASS_BYTES = 64 << 20
# An epoch makes at least this many optimizer updates: a short pass (kept, above) of fewer mini-batches
# is gone over again until it has. Data smaller than a few mini-batches (under the default
# mini_batch_size=1000) would otherwise make one update an epoch, 15 for the whole job: too few for
# the auto learning rate to converge (issue 16 item 13: iris 0.87 accuracy against scikit-learn's
# 0.97, diabetes 1.14x its MSE). With one mini-batch, each update is a full-batch step, so an epoch of
# 8 updates is exactly 8 epochs of one; data of 8 mini-batches or more is trained as before.
MIN_UPDATES_PER_EPOCH = 8


def train_epochs(training: Training, first_raw: Iterable | None) -> None:
    """Train until ``epochs`` are done or early stopping ends it. ``first_raw``: the first epoch's raw
    train batches when they are already open (the scaler sample read them)."""
    cfg, state, reporter = training.cfg, training.state, training.job.reporter
    while state.epochs_done < cfg.epochs and not state.stopped:
        epoch, ep_start = state.epochs_done, time.time()
        train_stats = _train_pass(training, first_raw)
        first_raw = None
        train_time = time.time() - ep_start
        local_rows = train_stats.rows
        val_stats = _validation_pass(training)
        if training.cluster.size > 1:  # rank, select and stop on every host's numbers, alike everywhere
            for stats in (train_stats, val_stats):
                if stats is not None:
                    merge_stats(stats, training.cluster)
        _end_epoch(training, epoch, ep_start, train_stats, val_stats)
        reporter.progress(100.0 * (epoch + 1) / cfg.epochs)
        reporter.throughput(round(local_rows / max(train_time, 1e-9), 2))
        state.epochs_done = epoch + 1
        state.stopped = training.early.should_stop
        if training.checkpoints.enabled:
            _save_checkpoint(training)
        if state.stopped:
            training.job.log.info("Early stop condition met. Stopping training.")


def _train_pass(training: Training, first_raw: Iterable | None) -> EpochStats:
    """One training pass of every model over this host's train data."""
    model, objective = training.model, training.objective
    # binary threshold criteria need a score histogram of the pass the models are ranked on: this one
    # only when there is no validation channel
    ranks_here = training.cfg.predictor_type == BINARY and "validation" not in training.sources
    stats = EpochStats(model.xp, model.M, objective.criterion, objective.factor, binary=ranks_here, loss=model.loss)
    kept: list | None = []  # a short pass's batches, to rank the models it ends with
    for batch in training.sources["train"].prepared_pass(first_raw):
        Sv, _ = model.train_step(batch, losses=False)  # the stats' thread computes the losses
        stats.add(Sv, batch.y)
        kept = _keep_short(kept, batch)
    while model.sync is not None and model.idle_step():
        pass  # this host's shard is done: step with the hosts that still have rows
    for _ in range(_repeats(training, kept)):
        for batch in kept:
            model.train_step(batch)
        while model.sync is not None and model.idle_step():
            pass
    if not kept:
        return stats
    # The pass's sums hold each batch's loss before its step, and the model kept is the one after the
    # last step. Over many steps the two agree; over a few (one, when the data is a single mini-batch)
    # they do not, and a model that overshoots on its last step would be ranked by its loss before it.
    exact = EpochStats(model.xp, model.M, objective.criterion, objective.factor, binary=ranks_here, loss=model.loss)
    for batch in kept:
        exact.add(model.scores(batch), batch.y)
    return exact


def _repeats(training: Training, kept: list | None) -> int:
    """How many more times this epoch goes over the pass just trained (see MIN_UPDATES_PER_EPOCH). With
    several hosts every host repeats alike: as often as the longest shard needs (the shorter ones take
    idle steps), and only when every host kept its pass."""
    steps = -1 if kept is None else len(kept)
    if training.cluster.size > 1:
        every = training.cluster.allgather(np.array([steps], dtype=np.int64)).ravel()
        steps = -1 if (every < 0).any() else int(every.max())
    if steps <= 0 or steps >= MIN_UPDATES_PER_EPOCH:
        return 0
    passes = -(-MIN_UPDATES_PER_EPOCH // steps)
    if training.state.epochs_done == 0:
        training.job.log.info(f"The train data is {steps} mini-batch(es) of at most {training.cfg.mini_batch_size} "
                              f"records: every epoch goes over it {passes} times, so that it makes at least "
                              f"{MIN_UPDATES_PER_EPOCH} updates.")
    return passes - 1


def _keep_short(kept: list | None, batch) -> list | None:
    """``kept`` plus ``batch`` while the pass is short (see SHORT_PASS_*); None once it is not."""
    if kept is None or len(kept) >= SHORT_PASS_BATCHES or \
            sum(b.nbytes for b in kept) + batch.nbytes > SHORT_PASS_BYTES:
        return None
    kept.append(batch)
    return kept


def _validation_pass(training: Training) -> EpochStats | None:
    validation = training.sources.get("validation")
    if validation is None:
        return None
    model, objective = training.model, training.objective
    stats = EpochStats(model.xp, model.M, objective.criterion, objective.factor,
                       binary=training.cfg.predictor_type == BINARY, loss=model.loss)
    for batch in validation.prepared_pass():
        stats.add(model.scores(batch), batch.y)
    return stats


def _end_epoch(training: Training, epoch: int, ep_start: float, train_stats: EpochStats,
               val_stats: EpochStats | None) -> None:
    """Log the epoch's metrics, rank the models, keep the best one, update early stopping."""
    end, criterion, objective = time.time(), training.objective.criterion, training.objective.name
    reporter, model, state, early = training.job.reporter, training.model, training.state, training.early
    train_obj = train_stats.objective()
    val_obj = val_stats.objective() if val_stats is not None else None
    values, _ = (val_stats or train_stats).criterion_values()
    m = criterion.best_index(values)
    value = float(values[m])
    for i in range(model.M):
        entry = {f"train_{objective}": float(train_obj[i])}
        if val_obj is not None:
            entry[f"validation_{objective}"] = float(val_obj[i])
        reporter.metrics(entry, ep_start, end, epoch=epoch, model=i)
    reporter.quality("train", objective, train_obj[m], "loss", epoch=epoch)
    if val_obj is not None:
        reporter.quality("validation", objective, val_obj[m], "loss", epoch=epoch)
    training.job.log.info(f"#early_stopping_criteria_metric: host={training.job.host}, epoch={epoch}, "
                          f"criteria={criterion.name}, value={value!r}")
    improved = early.update(value)
    if state.best is None or criterion.better(value, state.best.value):
        state.best = Best(epoch=epoch, model=m, value=value, block=model.model_block(m))
    if improved:
        training.job.log.info(f"Epoch {epoch}: Loss improved. Updating best model")
    else:
        training.job.log.info(f"Epoch {epoch}: Loss has not improved for {early.bad_epochs} epoch(s).")


def _save_checkpoint(training: Training) -> None:
    state, model, checkpoints, log = training.state, training.model, training.checkpoints, training.job.log
    meta, arrays = to_checkpoint(state, model.P, model.opt.t, model.opt.state_arrays(), training.early.state(),
                                 state.epochs_done, state.stopped, checkpoints.job_id)
    try:
        path = save_state(checkpoints.directory, meta, arrays)
    except OSError as exc:  # a full or read-only checkpoint volume must not kill the training
        log.warning(f"Could not save the checkpoint in {checkpoints.directory}: {exc}")
        return
    log.info(f"Saved checkpoint to \"{path}\"")
