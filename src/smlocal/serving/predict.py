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

    ``predicted_label`` is a float for every predictor type, as the serving issue and spec §4.3 ask
    (the 2023 adult endpoint in ll-binary-adult-aws printed the binary label as ``1``; the issue wins).
    """
    check_feature_count(model, X)
    return model.outputs(X)
