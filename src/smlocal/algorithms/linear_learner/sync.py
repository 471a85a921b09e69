"""Data-parallel linear learner: the parallel models stay identical on every host.

Synchronisation frequency: **every optimizer step** (synchronous SGD over the KVStore). Each host
computes the gradient of all ``num_models`` models on its own mini-batch; ``GradientSync`` sums
``gradient * rows`` and the row counts over the hosts in one allreduce, and every host applies the
same mean gradient of the global batch (``mini_batch_size`` rows per host) with the same optimizer
state. So the models never drift apart, a multi-host job is a single-host job with an ``n``-times
larger batch, and optimizer moments (Adam, RMSProp, momentum), the learning-rate schedule and the
l1 proximal step need no averaging of their own. Parameter averaging every epoch would cost less
traffic, but averaging Adam/RMSProp states is only an approximation and the models would differ
between hosts during the epoch. One allreduce per step costs about 1 ms on one machine; per step
data is (d + 1) * num_models * outputs floats.

Shards differ in size: a host that runs out of rows keeps taking part with an empty contribution
(``ParallelLinear.idle_step``) until every host is out; the epoch ends on all hosts at the same step.

Per-epoch statistics (objective, threshold histograms, cross-entropy) are summed over the hosts
(``merge_stats``), so the selection criterion, the best model and early stopping are decided on the
same numbers everywhere. A replicated validation channel is counted once per host: every statistic
is a ratio of sums, so that changes nothing.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from smlocal.arrays import to_numpy


class GradientSync:
    """Turns a host's mean gradient into the mean gradient of every host's rows of this step."""

    def __init__(self, cluster: Any, xp: Any, shape: tuple[int, int]):
        self.cluster, self.xp = cluster, xp
        self._buffer = np.zeros(int(np.prod(shape)) + 2, dtype=np.float32)  # [g * rows | rows | active]

    def __call__(self, g: Any, rows: int, active: bool = True) -> bool:
        """Replace ``g`` (in place) by the global mean gradient; False when no host is active any more."""
        buffer = self._buffer
        np.multiply(to_numpy(g).reshape(-1), np.float32(rows), out=buffer[:-2])
        buffer[-2] = rows
        buffer[-1] = 1.0 if active else 0.0
        total = self.cluster.allreduce_sum(buffer)
        if total[-1] == 0:
            return False
        g[...] = self.xp.asarray((total[:-2] / max(float(total[-2]), 1.0)).reshape(g.shape))
        return True


def merge_stats(stats: Any, cluster: Any) -> None:
    """Sum one pass's ``EpochStats`` over the hosts, in place (one allreduce)."""
    stats.wait()
    xp = stats.xp
    parts = [to_numpy(stats.loss_sum).astype(np.float64), np.array([stats.rows], dtype=np.float64)]
    if stats.hist is not None:
        parts.append(to_numpy(stats.hist.counts).astype(np.float64))  # exact below 2**53
    if stats.xent_sum is not None:
        parts.append(to_numpy(stats.xent_sum).astype(np.float64))
    total = cluster.allreduce_sum(np.concatenate(parts))
    M = stats.M
    stats.loss_sum = xp.asarray(total[:M])
    stats.rows = int(round(total[M]))
    offset = M + 1
    if stats.hist is not None:
        size = int(stats.hist.counts.shape[0])
        stats.hist.counts = xp.asarray(np.rint(total[offset:offset + size]).astype(np.int64))
        offset += size
    if stats.xent_sum is not None:
        stats.xent_sum = xp.asarray(total[offset:offset + M])
