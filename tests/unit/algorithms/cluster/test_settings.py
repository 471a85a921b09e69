"""Tests of the KVStore cluster's settings: addresses, ports and timeout from the hosts and the environment."""
from __future__ import annotations

import pytest

from smlocal.algorithms.cluster.settings import cluster_settings
from smlocal.errors import CustomerError, PlatformError

HOSTS = ("algo-1", "algo-2", "algo-3")


def test_settings_default_to_the_first_host_and_port_9000():
    s = cluster_settings(HOSTS, "algo-2", {}, resolve=lambda name: {"algo-1": "10.0.0.7"}[name], interface="eth1")
    assert (s.root_uri, s.root_port, s.monitor_port, s.timeout, s.rank, s.size) == ("10.0.0.7", 9000, 9001, 30.0, 1, 3)
    assert s.dmlc_env("worker") == {"DMLC_ROLE": "worker", "DMLC_PS_ROOT_URI": "10.0.0.7", "DMLC_PS_ROOT_PORT": "9000",
                                    "DMLC_NUM_SERVER": "1", "DMLC_NUM_WORKER": "3", "DMLC_INTERFACE": "eth1"}


def test_loopback_settings_pin_the_node_address():
    env = {"DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": "41000", "SMLOCAL_KV_TIMEOUT": "2.5"}
    s = cluster_settings(HOSTS[:2], "algo-1", env, resolve=lambda name: pytest.fail("no lookup for a given URI"))
    assert (s.root_port, s.monitor_port, s.timeout, s.loopback) == (41000, 41001, 2.5, True)
    role = s.dmlc_env("scheduler")
    assert role["DMLC_ROLE"] == "scheduler" and role["DMLC_NODE_HOST"] == "127.0.0.1" and role["DMLC_INTERFACE"] == "lo"
    assert role["DMLC_NUM_WORKER"] == "2" and role["DMLC_NUM_SERVER"] == "1"


def test_a_root_host_name_is_resolved_to_its_address():
    s = cluster_settings(HOSTS[:2], "algo-2", {"DMLC_PS_ROOT_URI": "localhost"})
    assert s.root_uri == "127.0.0.1" and s.loopback and s.dmlc_env("worker")["DMLC_INTERFACE"] == "lo"


@pytest.mark.parametrize("env, name", [
    ({"SMLOCAL_KV_TIMEOUT": "soon"}, "SMLOCAL_KV_TIMEOUT"),
    ({"SMLOCAL_KV_TIMEOUT": "-1"}, "SMLOCAL_KV_TIMEOUT"),
    ({"DMLC_PS_ROOT_PORT": "70000"}, "DMLC_PS_ROOT_PORT"),
    ({"SMLOCAL_KV_MONITOR_PORT": "9000"}, "SMLOCAL_KV_MONITOR_PORT"),
])
def test_bad_settings_name_the_variable(env, name):
    with pytest.raises(CustomerError, match=name):
        cluster_settings(HOSTS, "algo-1", {"DMLC_PS_ROOT_URI": "127.0.0.1", **env})


def test_a_current_host_outside_the_hosts_is_a_customer_error():
    with pytest.raises(CustomerError, match="current_host 'algo-9'"):
        cluster_settings(HOSTS, "algo-9", {"DMLC_PS_ROOT_URI": "127.0.0.1"})


def test_an_unresolvable_first_host_says_what_to_set():
    def fail(name):
        raise OSError("Name or service not known")

    with pytest.raises(PlatformError, match="DMLC_PS_ROOT_URI"):
        cluster_settings(HOSTS, "algo-2", {}, resolve=fail)
