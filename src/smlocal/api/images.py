"""Which smlocal container runs an image URI users write: AWS built-ins, framework images, the rest.

- ``<account>.dkr.ecr.<region>.<domain>/kmeans:1`` (and ``linear-learner``), any region and partition:
  the AWS built-in, which cannot be pulled; smlocal's algorithm of that name stands in.
- ``.../sagemaker-scikit-learn:<version>``: the SDK's ``SKLearn`` framework image; the user's script
  runs in script mode on smlocal's container (the toolkit's ``SM_*`` environment, /opt/ml/code).
- anything else runs as it is (the docker backend).
"""
from __future__ import annotations

import re

from smlocal.algorithms import by_image_repository

_ECR_HOST = re.compile(r"^\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.[a-z0-9.-]+$")

FRAMEWORK_REPOSITORIES = {"sagemaker-scikit-learn": "sklearn"}


def repository(image: str) -> str:
    """``acct.dkr.ecr.region.amazonaws.com/kmeans:1`` -> ``kmeans`` (tag or digest dropped)."""
    return image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]


def is_aws_image(image: str) -> bool:
    """An ECR registry of any partition: ``<account>.dkr.ecr.<region>.<amazonaws.com | .com.cn | ISO domain>``."""
    return _ECR_HOST.match(image.split("/", 1)[0]) is not None


def builtin_algorithm(image: str | None) -> str | None:
    """The smlocal algorithm an AWS built-in image names, else None."""
    if not image or not is_aws_image(image):
        return None
    found = by_image_repository(repository(image))
    return found.name if found else None


def framework(image: str | None) -> str | None:
    """``sklearn`` for the SDK's scikit-learn framework image, else None."""
    if not image or not is_aws_image(image):
        return None
    return FRAMEWORK_REPOSITORIES.get(repository(image))


def local_algorithm_spec(spec: dict) -> dict:
    """An AlgorithmSpecification with an AWS image replaced by what runs it here: AlgorithmName for a
    built-in, nothing for a framework image (script mode on smlocal's container)."""
    spec = dict(spec)
    image = spec.get("TrainingImage")
    algorithm = builtin_algorithm(image)
    if algorithm:
        spec.pop("TrainingImage")
        spec["AlgorithmName"] = algorithm
    elif framework(image):
        spec.pop("TrainingImage")
    return spec
