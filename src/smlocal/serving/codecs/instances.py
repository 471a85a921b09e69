"""The three JSON instance shapes shared by ``application/json`` and ``application/jsonlines``.

They are the request shapes of SageMaker developer guide, "Common Data Formats for Inference":

    {"features": [1.5, 16.0, 14.0]}
    {"data": {"features": {"values": [1.5, 16.0, 14.0]}}}
    {"data": {"features": {"keys": [26, 182], "shape": [2000], "values": [1, 4]}}}

An instance may also carry ``"configuration": {}``, which is ignored.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from smlocal.serving.codecs.base import Features, bad_payload, require_finite, require_rows

_MAX_DIM = np.iinfo(np.int64).max  # sparse keys are int64 indices
SHAPES = ('{"features": [...]}, {"data": {"features": {"values": [...]}}} or '
          '{"data": {"features": {"keys": [...], "shape": [d], "values": [...]}}}')


def _numbers(values: Any, row: int, what: str) -> np.ndarray:
    if not isinstance(values, list):
        raise bad_payload(f"row {row}: '{what}' must be a list of numbers")
    try:
        arr = np.array(values, dtype=np.float32)
    except OverflowError:  # a JSON integer past a double's range (10**400)
        raise bad_payload(f"row {row}: '{what}' holds a number too large for float32") from None
    except (ValueError, TypeError):
        raise bad_payload(f"row {row}: '{what}' must be a flat list of numbers") from None
    if arr.ndim != 1:
        raise bad_payload(f"row {row}: '{what}' must be a flat list of numbers")
    return arr


def parse_instance(obj: Any, row: int):
    """-> ("dense", values) or ("sparse", keys, values, dim). ``row`` is 1-based, for messages."""
    if not isinstance(obj, dict):
        raise bad_payload(f"row {row} is not a JSON object; each record looks like {SHAPES}")
    if "features" in obj:
        return "dense", _numbers(obj["features"], row, "features")
    data = obj.get("data")
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, dict) or "values" not in features:
        raise bad_payload(f"row {row} has neither 'features' nor 'data.features.values'; use {SHAPES}")
    values = _numbers(features["values"], row, "values")
    if "keys" not in features:
        return "dense", values
    shape = features.get("shape")
    if not (isinstance(shape, list) and len(shape) == 1 and type(shape[0]) is int and 0 < shape[0] <= _MAX_DIM):
        raise bad_payload(f"row {row}: a sparse record needs 'shape': [feature_dim] (1 to 2^63-1), got {shape!r}")
    keys = features["keys"]
    if not isinstance(keys, list) or not all(isinstance(k, int) and not isinstance(k, bool) for k in keys):
        raise bad_payload(f"row {row}: 'keys' must be a list of integer feature indices")
    if len(keys) != values.size:
        raise bad_payload(f"row {row} has {len(keys)} keys but {values.size} values")
    dim = shape[0]
    if keys and (min(keys) < 0 or max(keys) >= dim):
        raise bad_payload(f"row {row} has key {max(keys) if max(keys) >= dim else min(keys)} outside shape [{dim}]")
    return "sparse", np.array(keys, dtype=np.int64), values, dim


def _dense_features(instances: Sequence[Any]) -> np.ndarray | None:
    """The common case in one numpy call: every instance is ``{"features": [numbers]}`` of one length.

    None when anything is unusual; the per-row path then parses it and names the offending row.
    """
    if not all(type(obj) is dict and type(obj.get("features")) is list for obj in instances):
        return None
    try:
        X = np.array([obj["features"] for obj in instances], dtype=np.float32)
    except (ValueError, TypeError, OverflowError):
        return None
    return X if X.ndim == 2 else None


def to_features(instances: Sequence[Any], row_offset: int = 1) -> Features:
    """Parse every instance; dense rows -> (n, d) ndarray, any sparse row -> CSR for all."""
    require_rows(len(instances))
    fast = _dense_features(instances)
    if fast is not None:
        require_finite(fast, row_offset)
        return fast
    parsed = [parse_instance(obj, i + row_offset) for i, obj in enumerate(instances)]
    dims = [p[1].size if p[0] == "dense" else p[3] for p in parsed]
    for i, dim in enumerate(dims):
        if dim != dims[0]:
            raise bad_payload(f"row {i + row_offset} has {dim} features but row {row_offset} has {dims[0]}")
    if all(p[0] == "dense" for p in parsed):
        X = np.stack([p[1] for p in parsed]) if parsed else np.zeros((0, 0), np.float32)
    else:
        indices, data, indptr = [], [], [0]
        for p in parsed:
            keys = np.arange(p[1].size) if p[0] == "dense" else p[1]
            vals = p[1] if p[0] == "dense" else p[2]
            indices.append(keys)
            data.append(vals)
            indptr.append(indptr[-1] + keys.size)
        X = sp.csr_matrix((np.concatenate(data).astype(np.float32), np.concatenate(indices), np.array(indptr)),
                          shape=(len(parsed), dims[0]))
    require_finite(X, row_offset)
    return X
