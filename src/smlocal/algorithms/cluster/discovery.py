"""Where this host is in a training job, whichever engine placed it: one rule per engine, in this order.

1. SageMaker: ``input/config/resourceconfig.json`` (its ``hosts`` and ``current_host``) when present.
2. AWS Batch multi-node parallel jobs: ``AWS_BATCH_JOB_NUM_NODES``, ``AWS_BATCH_JOB_NODE_INDEX``,
   ``AWS_BATCH_JOB_MAIN_NODE_INDEX`` and, on the child nodes only, ``AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS``
   (AWS Batch User Guide, "Multi-node parallel job environment variables": the main node is not given
   its own address, so it takes ``DMLC_PS_ROOT_URI`` or the address its host name resolves to).
3. Kubernetes Indexed Jobs: ``JOB_COMPLETION_INDEX`` (set by the Job controller) and, from the manifest's
   env, ``SMLOCAL_K8S_COMPLETIONS`` (the Job's ``completions``), ``SMLOCAL_K8S_JOB`` (its name) and
   ``SMLOCAL_K8S_SERVICE`` (the headless Service named by the pods' ``subdomain``): pod ``i`` is then
   reachable as ``<job>-<i>.<service>`` (Kubernetes docs, "Indexed Job" and "Pod's hostname and
   subdomain fields").
4. Otherwise one host, as SageMaker's defaults give it.

Every rule gives hosts ``algo-1 .. algo-N`` with the main node first, so the algorithms, sharding and the
model file (``model_algo-1``) are what they are on SageMaker; plus the main node's address (the KVStore
root) and what to check, per engine, when a node cannot reach it.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import asdict, dataclass
from typing import Callable, Mapping

from smlocal.environment import ResourceConfig, TrainingEnv
from smlocal.errors import CustomerError, PlatformError

SAGEMAKER, BATCH, KUBERNETES = "sagemaker", "batch", "kubernetes"

BATCH_NUM_NODES = "AWS_BATCH_JOB_NUM_NODES"
BATCH_NODE_INDEX = "AWS_BATCH_JOB_NODE_INDEX"
BATCH_MAIN_NODE_INDEX = "AWS_BATCH_JOB_MAIN_NODE_INDEX"
BATCH_MAIN_ADDRESS = "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"
BATCH_VARIABLES = (BATCH_NUM_NODES, BATCH_NODE_INDEX, BATCH_MAIN_NODE_INDEX, BATCH_MAIN_ADDRESS)

K8S_INDEX = "JOB_COMPLETION_INDEX"
K8S_COMPLETIONS = "SMLOCAL_K8S_COMPLETIONS"
K8S_JOB = "SMLOCAL_K8S_JOB"
K8S_SERVICE = "SMLOCAL_K8S_SERVICE"

ROOT_URI_ENV = "DMLC_PS_ROOT_URI"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

# formatted by settings.cluster_settings with the job's ports
BATCH_HINT = (" On AWS Batch the nodes of a multi-node parallel job reach each other only where their security "
              "group allows inbound TCP from itself (a rule whose source is that same security group) on ports "
              "{port} (DMLC_PS_ROOT_PORT) and {monitor_port} (SMLOCAL_KV_MONITOR_PORT).")
K8S_HINT = (" On Kubernetes pod 0 is reached as {root} through the headless Service '{service}': it must exist in "
            "the Job's namespace with clusterIP: None and select the Job's pods, the pod template's subdomain "
            "must be '{service}', and no NetworkPolicy may block TCP ports {{port}} and {{monitor_port}}.")


@dataclass(frozen=True)
class Placement(ResourceConfig):
    """resourceconfig.json's view of the job (hosts, current host), plus where the main node is."""

    engine: str = SAGEMAKER
    root_address: str | None = None  # the main node's address or DNS name; None: the first host's name
    unreachable_hint: str = ""  # said when a node cannot reach the main node ({port}, {monitor_port})


def host_names(count: int) -> tuple[str, ...]:
    return tuple(f"algo-{i + 1}" for i in range(count))


def _integer(environ: Mapping[str, str], name: str, minimum: int = 0, below: tuple[int, str] | None = None) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        raise CustomerError(f"The environment variable {name} is not set; the engine sets it for every node "
                            "of the job.")
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise CustomerError(f"The environment variable {name}='{raw}' is not valid: it must be an integer >= "
                            f"{minimum}.")
    if below is not None and value >= below[0]:
        raise CustomerError(f"The environment variable {name}={value} is not a node of this job: {below[1]}="
                            f"{below[0]} nodes are numbered 0 to {below[0] - 1}.")
    return value


def _own_address() -> str:
    name = socket.gethostname()
    try:
        return socket.gethostbyname(name)
    except OSError as exc:
        raise PlatformError(f"The main node cannot find its own address: its host name '{name}' does not resolve "
                            f"({exc}). Set {ROOT_URI_ENV} to its private IPv4 address.") from None


def batch_placement(environ: Mapping[str, str], own_address: Callable[[], str] = _own_address) -> Placement:
    """An AWS Batch multi-node parallel job's node: the main node is algo-1, the others follow in index order."""
    count = _integer(environ, BATCH_NUM_NODES, minimum=1)
    index = _integer(environ, BATCH_NODE_INDEX, below=(count, BATCH_NUM_NODES))
    main = _integer(environ, BATCH_MAIN_NODE_INDEX, below=(count, BATCH_NUM_NODES))
    order = [main] + [i for i in range(count) if i != main]
    hosts = host_names(count)
    current = hosts[order.index(index)]
    root = None
    if count > 1 and index != main:
        raw = environ.get(BATCH_MAIN_ADDRESS, "").strip()
        if not raw:
            raise CustomerError(f"The environment variable {BATCH_MAIN_ADDRESS} is not set on node {index} of "
                                f"{count}: AWS Batch gives it to every child node of a multi-node parallel job "
                                "(is the job definition of type multinode?).")
        try:
            root = str(ipaddress.IPv4Address(raw))
        except ValueError:
            raise CustomerError(f"The environment variable {BATCH_MAIN_ADDRESS}='{raw}' is not an IPv4 "
                                "address.") from None
    elif count > 1 and not environ.get(ROOT_URI_ENV, "").strip():
        root = own_address()
    return Placement(current_host=current, hosts=hosts, engine=BATCH, root_address=root,
                     unreachable_hint=BATCH_HINT)


def _dns_label(environ: Mapping[str, str], name: str, what: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise CustomerError(f"The environment variable {name} is not set: on Kubernetes the manifest gives it "
                            f"({what}), so that the pods can find pod 0 (smlocal export --target kubernetes "
                            "writes it).")
    if not _DNS_LABEL.match(value):
        raise CustomerError(f"The environment variable {name}='{value}' is not a Kubernetes name (lower-case "
                            "letters, digits and '-', at most 63).")
    return value


def kubernetes_placement(environ: Mapping[str, str]) -> Placement:
    """A pod of a Kubernetes Indexed Job: completion index i is algo-(i+1); pod 0 is the main node."""
    count = _integer(environ, K8S_COMPLETIONS, minimum=1)
    index = _integer(environ, K8S_INDEX, below=(count, K8S_COMPLETIONS))
    hosts = host_names(count)
    if count == 1:
        return Placement(current_host=hosts[0], hosts=hosts, engine=KUBERNETES)
    job = _dns_label(environ, K8S_JOB, "the Job's metadata.name")
    service = _dns_label(environ, K8S_SERVICE, "the headless Service's name, the pods' subdomain")
    root = f"{job}-0.{service}"
    return Placement(current_host=hosts[index], hosts=hosts, engine=KUBERNETES, root_address=root,
                     unreachable_hint=K8S_HINT.format(root=root, service=service))


def discover(env: TrainingEnv, environ: Mapping[str, str],
             own_address: Callable[[], str] = _own_address) -> Placement:
    """This host's placement by the first rule that applies (see the module docstring)."""
    if env.paths.resource_config_file.exists():
        return Placement(**asdict(env.resources), engine=SAGEMAKER)
    if any(environ.get(name, "").strip() for name in BATCH_VARIABLES):
        return batch_placement(environ, own_address)
    if environ.get(K8S_INDEX, "").strip():
        return kubernetes_placement(environ)
    return Placement(**asdict(env.resources))

