"""How the hosts of one training job cooperate: ``join_cluster(env)`` gives this host its ``Cluster``.

One host: the local ``single.Cluster`` (no MXNet, no network). Several hosts: ``kvstore.DistCluster``,
MXNet's KVStore, with its settings in ``settings`` and its liveness monitor in ``monitor``.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from smlocal.algorithms.cluster.kvstore import DistCluster
from smlocal.algorithms.cluster.settings import cluster_settings
from smlocal.algorithms.cluster.single import Cluster

__all__ = ["Cluster", "join_cluster"]


def join_cluster(env: Any, environ: Mapping[str, str] | None = None) -> Cluster:
    """The job's cluster from ``env.resources`` (resourceconfig.json): several hosts start the KVStore."""
    hosts, current = tuple(env.resources.hosts), env.resources.current_host
    if len(hosts) <= 1:
        return Cluster((current,), current)
    settings = cluster_settings(hosts, current, os.environ if environ is None else environ,
                                interface=getattr(env.resources, "network_interface_name", None))
    return DistCluster(settings, env.paths.failure_file).start()
