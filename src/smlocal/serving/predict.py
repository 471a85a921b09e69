"""Model -> response columns, in the built-ins' key order and value types."""
from __future__ import annotations

from smlocal.artifacts.loader import Model
from smlocal.serving.codecs.base import Columns, Features, bad_payload


def check_feature_count(model: Model, X: Features) -> None:
    got = X.shape[1]
    if got != model.feature_dim:
        raise bad_payload(
            f"the model expects {model.feature_dim} features per record, got {got}"
        )


def response_columns(model: Model, X: Features) -> Columns:
    """k-means: closest_cluster, distance_to_cluster. linear learner: score [, predicted_label].

    ``predicted_label`` is a float for every predictor type, as real multiclass responses print it
    (``"predicted_label": 0.0``). The developer guide's examples show integers, and the 2023 adult
    endpoint in ll-binary-adult-aws printed the binary label as ``1``; we keep one type for all.
    """
    check_feature_count(model, X)
    return model.outputs(X)
