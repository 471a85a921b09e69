"""ListTags: the tags of a resource named by its ARN.

The SDK's ``Estimator.attach`` (and so ``HyperparameterTuner.deploy``/``best_estimator``) calls it for the
training job it attaches to. Records do not keep the Tags of their create requests (nothing local acts
on them), so a resource that exists answers an empty list, as one created without tags does on the service.
"""
from __future__ import annotations

from smlocal.api.protocol import validation
from smlocal.api.store import Store

ARN_KEYS = {"training-jobs": "TrainingJobArn", "models": "ModelArn", "endpoint-configs": "EndpointConfigArn",
            "endpoints": "EndpointArn", "transform-jobs": "TransformJobArn",
            "tuning-jobs": "HyperParameterTuningJobArn"}


def list_tags(store: Store, body: dict) -> dict:
    arn = body["ResourceArn"]
    for kind, key in ARN_KEYS.items():
        if any(r.get(key) == arn for r in store.all(kind)):
            return {"Tags": []}
    raise validation(f"Resource {arn} does not exist.")
