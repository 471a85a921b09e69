"""How the hosts of one training job cooperate: ``join_cluster(env)`` gives this host its ``Cluster``.

One host: the local ``single.Cluster`` (no MXNet, no network). Several hosts: ``kvstore.DistCluster``,
MXNet's KVStore, with its settings in ``settings`` and its liveness monitor in ``monitor``. Where the hosts
are (SageMaker, AWS Batch, Kubernetes) is ``discovery``'s concern.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from smlocal.algorithms.cluster.kvstore import DistCluster
from smlocal.algorithms.cluster.settings import cluster_settings
from smlocal.algorithms.cluster.single import Cluster

__all__ = ["Cluster", "join_cluster"]


def join_cluster(env: Any, environ: Mapping[str, str] | None = None) -> Cluster:
    """The job's cluster from ``env.resources`` (resourceconfig.json, or a ``discovery.Placement`` on another
    engine): several hosts start the KVStore."""
    resources = env.resources
    hosts, current = tuple(resources.hosts), resources.current_host
    if len(hosts) <= 1:
        return Cluster((current,), current)
    settings = cluster_settings(hosts, current, os.environ if environ is None else environ,
                                interface=getattr(resources, "network_interface_name", None),
                                root=getattr(resources, "root_address", None),
                                hint=getattr(resources, "unreachable_hint", ""))
    return DistCluster(settings, env.paths.failure_file).start()
