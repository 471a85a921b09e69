"""The one registry of built-in algorithms: their ``SMLOCAL_ALGORITHM`` names, the AWS image repositories
that name them, and the module whose ``train(env)`` runs each. Modules are imported only when a job runs."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Algorithm:
    name: str  # the SMLOCAL_ALGORITHM value and CLI --algorithm choice
    image_repository: str  # <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> of the AWS built-in
    module: str  # implements train(env)


REGISTRY: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("kmeans", "kmeans", "smlocal.algorithms.kmeans"),
    Algorithm("linear-learner", "linear-learner", "smlocal.algorithms.linear_learner"),
)}
NAMES: tuple[str, ...] = tuple(REGISTRY)


def normalize(name: str) -> str:
    """``Linear_Learner`` -> ``linear-learner``: the spelling the registry uses."""
    return str(name).strip().lower().replace("_", "-")


def by_image_repository(repository: str) -> Algorithm | None:
    return next((a for a in REGISTRY.values() if a.image_repository == repository), None)


def train_function(name: str) -> Callable:
    """The ``train(env)`` of a registered algorithm (``KeyError`` for any other name)."""
    return importlib.import_module(REGISTRY[name].module).train
