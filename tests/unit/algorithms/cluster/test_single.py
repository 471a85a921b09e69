"""Tests of the one-host cluster: identities, and no MXNet import on one host."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from smlocal.algorithms.cluster import Cluster


def test_the_one_host_cluster_is_the_identity():
    c = Cluster(("algo-1",), "algo-1")
    assert (c.size, c.rank, c.is_first, c.store_type) == (1, 0, True, "local")
    assert c.allreduce_sum(np.array([1, 2])).dtype == np.int64
    assert c.allreduce_sum(np.ones(2, np.float32)).dtype == np.float32
    assert c.allgather(np.array([3.0])).tolist() == [[3.0]]
    assert c.gather_rows(np.arange(3)).tolist() == [0, 1, 2] and c.broadcast(np.array([5.0])).tolist() == [5.0]
    with c:  # close and barrier are no-ops
        c.barrier()


def test_no_mxnet_import_on_one_host():
    code = ("import sys; from smlocal.algorithms.cluster import Cluster; "
            "from smlocal.algorithms import kmeans, linear_learner; assert 'mxnet' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
