"""The k-means job's steps on in-memory channels: iterator counters, the init read, its checks, ``fit``."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from smlocal.algorithms.cluster import Cluster
from smlocal.algorithms.common.reporting import Reporter
from smlocal.algorithms.kmeans.config import KMeansConfig
from smlocal.algorithms.kmeans.job import ALGORITHM, _check_head, _IterStats, _read_head, fit
from smlocal.arrays import CPU
from smlocal.errors import CustomerError


class _Channel:
    """``batches(size, epoch)`` over an in-memory matrix, as the data plane's channels give them."""

    def __init__(self, X: np.ndarray):
        self.X = X
        self.epochs: list[int] = []

    def batches(self, size: int, epoch: int = 0):
        self.epochs.append(epoch)
        for i in range(0, self.X.shape[0], size):
            yield SimpleNamespace(features=self.X[i:i + size])


def _blobs(n: int = 600, d: int = 3, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=10.0, size=(4, d))
    return (centers[rng.integers(0, 4, n)] + rng.normal(size=(n, d))).astype(np.float32)


def test_iterator_stats_follow_resets():
    stats = _IterStats()
    for rows in (5, 5, 3):
        stats.add(rows)
    stats.reset()
    stats.add(4)
    m = stats.metrics()
    assert m["Total Records Seen"] == 17 and m["Total Batches Seen"] == 4
    assert m["Max Records Seen Between Resets"] == 13 and m["Max Batches Seen Between Resets"] == 3
    assert m["Number of Records Since Last Reset"] == 4 and m["Reset Count"] == 1


def test_the_init_read_skips_empty_batches_and_stops_once_it_holds_k_centers_worth_of_rows():
    cfg = KMeansConfig(k=2, feature_dim=3, extra_center_factor=2)  # K = 4
    parts = [np.zeros((0, 3)), np.ones((3, 3)), np.ones((3, 3)), np.ones((3, 3))]
    batches = iter([SimpleNamespace(features=p) for p in parts])
    stats = _IterStats()
    head, rows = _read_head(batches, cfg, stats)
    assert rows == 6 and len(head) == 2 and stats.total_batches == 2
    assert next(batches).features.shape == (3, 3)  # the rest is left for the first pass


def test_the_init_read_rejects_a_batch_of_the_wrong_width():
    batches = iter([SimpleNamespace(features=np.ones((3, 5)))])
    with pytest.raises(CustomerError):
        _read_head(batches, KMeansConfig(k=2, feature_dim=3), _IterStats())


def test_init_checks_reject_no_rows_and_fewer_rows_than_k_on_one_host(caplog):
    log = logging.getLogger("kmeans-job-test")  # outside "smlocal", whose handlers other tests set up
    cfg = KMeansConfig(k=5, feature_dim=3, mini_batch_size=10)
    with pytest.raises(CustomerError, match="No training data found in channel 'train'"):
        _check_head(0, cfg, Cluster(), log)
    with pytest.raises(CustomerError, match="The value of k hyperparameter '5' is larger than .* '4'"):
        _check_head(4, cfg, Cluster(), log)
    _check_head(4, cfg, Cluster(("algo-1", "algo-2")), log)  # several hosts: checked once merged
    with caplog.at_level(logging.INFO, logger="kmeans-job-test"):
        _check_head(7, cfg, Cluster(), log)
    assert "Batch size 10 is bigger than the first batch data. Effective batch size used to initialize is 7" \
        in caplog.text


def test_fit_streams_every_epoch_and_gives_the_same_bits_for_the_same_input():
    X = _blobs()
    cfg = KMeansConfig(k=4, feature_dim=3, mini_batch_size=50, epochs=3, local_lloyd_num_trials=2)
    channel = _Channel(X)
    first = fit(cfg, channel, CPU, Reporter(ALGORITHM))
    second = fit(cfg, _Channel(X), CPU, Reporter(ALGORITHM))
    assert channel.epochs == [0, 1, 2]
    assert first.records == 3 * X.shape[0]
    assert first.centers.shape == (4, 3) and first.centers.dtype == np.float32
    assert first.centers.tobytes() == second.centers.tobytes() and first.train_msd == second.train_msd
    assert set(first.timers) == {"initialize.time", "update.time", "_shrink.time", "finalize.time"}
    # the train msd derived from the streaming state is close to the msd of a pass with the final centers
    msd = ((X[:, None, :] - first.centers[None]) ** 2).sum(-1).min(1).mean()
    assert first.train_msd == pytest.approx(msd, rel=0.2)
