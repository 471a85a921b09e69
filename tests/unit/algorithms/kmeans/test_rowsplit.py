"""Dense assignment split over row ranges on worker threads: same results as one thread."""
import threading

import numpy as np
import pytest

from smlocal.algorithms.kmeans.rowsplit import MIN_ROWS, RowSplitter
from smlocal.algorithms.kmeans.streaming import StreamingKMeans, init_centers
from tests.datasets import blobs


def test_ranges_cover_the_batch_in_order():
    with RowSplitter(3) as splitter:
        assert splitter.ranges(10 * MIN_ROWS) == [(0, 3413), (3413, 6826), (6826, 10240)]
        assert splitter.ranges(MIN_ROWS + 5) == [(0, MIN_ROWS + 5)]  # too few rows for a second range
        assert splitter.ranges(0) == [(0, 0)]
    assert RowSplitter(1).ranges(10 * MIN_ROWS) == [(0, 10 * MIN_ROWS)]


def test_run_uses_the_workers_and_reraises_their_errors():
    seen = {}

    def work(start, stop):
        seen[start] = threading.current_thread().name
        if start and stop == 4 * MIN_ROWS:
            raise ValueError("boom")

    with RowSplitter(2) as splitter:
        with pytest.raises(ValueError, match="boom"):
            splitter.run(4 * MIN_ROWS, work)
    assert sorted(seen) == [0, 2 * MIN_ROWS]
    assert seen[2 * MIN_ROWS].startswith("smlocal-kmeans")


def test_split_streaming_gives_the_same_state_as_one_thread():
    truth = np.random.default_rng(4).uniform(-5, 5, (8, 12))
    X = blobs(truth, 15000, seed=5, std=1.0)

    def run(splitter):
        state = StreamingKMeans.start(init_centers(X[:5000], 80, "random", seed=0))
        state.splitter = splitter
        for start in range(0, len(X), 5000):
            state.update(X[start:start + 5000])
        return state

    one = run(None)
    with RowSplitter(3) as splitter:
        split = run(splitter)
    np.testing.assert_array_equal(split.centers, one.centers)
    np.testing.assert_array_equal(split.counts, one.counts)
    np.testing.assert_array_equal(split.sq_sums, one.sq_sums)
