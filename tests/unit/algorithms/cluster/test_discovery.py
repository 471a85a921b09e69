"""Cluster discovery: SageMaker's resourceconfig.json, AWS Batch multi-node and Kubernetes Indexed Job
environments give the same hosts; a missing or contradictory variable is a customer error naming it."""
from __future__ import annotations

import pytest

from smlocal.algorithms.cluster.discovery import discover
from smlocal.algorithms.cluster.settings import cluster_settings
from smlocal.environment import load_training_env
from smlocal.errors import CustomerError, PlatformError
from tests.helpers import write_config


def _batch(n, index, main=0, address="10.0.0.5"):
    env = {"AWS_BATCH_JOB_NUM_NODES": str(n), "AWS_BATCH_JOB_NODE_INDEX": str(index),
           "AWS_BATCH_JOB_MAIN_NODE_INDEX": str(main)}
    if index != main:  # AWS Batch gives the main node's address to the child nodes only
        env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] = address
    return env


def _k8s(n, index):
    return {"JOB_COMPLETION_INDEX": str(index), "SMLOCAL_K8S_COMPLETIONS": str(n), "SMLOCAL_K8S_JOB": "train",
            "SMLOCAL_K8S_SERVICE": "train-svc"}


def _discover(tmp_path, environ):
    return discover(load_training_env(tmp_path), environ, own_address=lambda: "10.0.0.5")


def test_every_engine_gives_the_sagemaker_hosts(tmp_path):
    write_config(tmp_path / "sm", {}, {}, hosts=("algo-1", "algo-2", "algo-3"), current="algo-2")
    sagemaker = discover(load_training_env(tmp_path / "sm"), _batch(3, 0))  # resourceconfig.json comes first
    batch, k8s = _discover(tmp_path, _batch(3, 1)), _discover(tmp_path, _k8s(3, 1))
    assert sagemaker.engine == "sagemaker" and (batch.engine, k8s.engine) == ("batch", "kubernetes")
    for p in (sagemaker, batch, k8s):
        assert (p.hosts, p.current_host) == (("algo-1", "algo-2", "algo-3"), "algo-2")
    assert (batch.root_address, k8s.root_address) == ("10.0.0.5", "train-0.train-svc")
    assert _discover(tmp_path, {}).hosts == ("algo-1",)


def test_the_batch_main_node_is_the_first_host_wherever_it_is(tmp_path):
    assert [_discover(tmp_path, _batch(3, i, main=2)).current_host for i in range(3)] == ["algo-2", "algo-3", "algo-1"]
    main = _discover(tmp_path, _batch(3, 2, main=2))
    assert main.root_address == "10.0.0.5"  # its own address: Batch does not give it one


@pytest.mark.parametrize("environ, name", [
    ({**_batch(2, 1), "AWS_BATCH_JOB_NODE_INDEX": "2"}, "AWS_BATCH_JOB_NODE_INDEX=2"),
    ({k: v for k, v in _batch(2, 1).items() if k != "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"},
     "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS is not set"),
    ({"AWS_BATCH_JOB_NODE_INDEX": "0"}, "AWS_BATCH_JOB_NUM_NODES is not set"),
    ({**_batch(2, 1), "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": "main"}, "'main' is not an IPv4"),
    ({**_k8s(2, 1), "JOB_COMPLETION_INDEX": "3"}, "JOB_COMPLETION_INDEX=3"),
    ({"JOB_COMPLETION_INDEX": "0"}, "SMLOCAL_K8S_COMPLETIONS is not set"),
    ({**_k8s(2, 1), "SMLOCAL_K8S_SERVICE": ""}, "SMLOCAL_K8S_SERVICE is not set"),
])
def test_a_missing_or_contradictory_environment_names_the_variable(tmp_path, environ, name):
    with pytest.raises(CustomerError, match=name):
        _discover(tmp_path, environ)


def test_an_unresolvable_pod_name_is_retried_then_names_the_service(tmp_path):
    p = _discover(tmp_path, _k8s(2, 1))
    calls = []

    def fail(name):
        calls.append(name)
        raise OSError("Name or service not known")

    with pytest.raises(PlatformError, match="headless Service 'train-svc'.*ports 9000 and 9001"):
        cluster_settings(p.hosts, p.current_host, {"SMLOCAL_KV_TIMEOUT": "1"}, resolve=fail, root=p.root_address,
                         hint=p.unreachable_hint)
    assert set(calls) == {"train-0.train-svc"} and len(calls) > 1
