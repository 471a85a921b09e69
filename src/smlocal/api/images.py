"""The one image mapping only the API needs: the SDK's scikit-learn framework image.

AWS built-in images (``.../kmeans:1``, ``linear-learner``, any region and partition) are the
runtime's to recognise (``runtime.jobspec.algorithm_from_image``). The SDK's ``SKLearn`` estimator
names ``<account>.dkr.ecr.<region>.<domain>/sagemaker-scikit-learn:<version>``, which cannot be pulled:
its user script runs in script mode on smlocal's container instead (the toolkit's ``SM_*``
environment, /opt/ml/code). Any other image runs as it is (the docker backend).
"""
from __future__ import annotations

from smlocal.runtime.jobspec import image_repository, is_aws_image

FRAMEWORK_REPOSITORIES = {"sagemaker-scikit-learn": "sklearn"}


def framework(image: str | None) -> str | None:
    """``sklearn`` for the SDK's scikit-learn framework image, else None."""
    if not is_aws_image(image):
        return None
    return FRAMEWORK_REPOSITORIES.get(image_repository(image))


def local_algorithm_spec(spec: dict) -> dict:
    """An AlgorithmSpecification as the runtime takes it: a framework image dropped (script mode on
    smlocal's container); anything else as given."""
    spec = dict(spec)
    if framework(spec.get("TrainingImage")):
        spec.pop("TrainingImage")
    return spec
