"""The hyperparameter schema: defaults, types, SDK booleans, and the built-ins' error messages."""
from __future__ import annotations

import pytest

from smlocal.algorithms.common.hyperparameters import AUTO, Param, Schema
from smlocal.errors import CustomerError

SCHEMA = Schema("kmeans", [
    Param("k", "int", None, minimum=2),
    Param("feature_dim", "int", None, minimum=1),
    Param("mini_batch_size", "int", "5000", minimum=1),
    Param("init_method", "str", "random", choices=("random", "kmeans++")),
    Param("extra_center_factor", "int", "auto", minimum=1, auto=True),
    Param("local_lloyd_tol", "float", "0.0001", minimum=0, maximum=1),
    Param("eval_metrics", "list", '["msd"]', choices=("msd", "ssd")),
    Param("force_dense", "bool", "true"),
    Param("positive_example_weight_mult", "float", "1.0", minimum=0, exclusive_minimum=True, auto=True,
          extra=("balanced",)),
])


def test_defaults_and_types():
    hp = SCHEMA.parse({"k": "10", "feature_dim": "784"})
    assert hp["k"] == 10 and hp["feature_dim"] == 784
    assert hp["mini_batch_size"] == 5000 and hp["init_method"] == "random"
    assert hp["extra_center_factor"] == AUTO
    assert hp["eval_metrics"] == ["msd"] and hp["force_dense"] is True


@pytest.mark.parametrize("raw,expected", [("True", True), ("False", False), ("true", True), ("FALSE", False)])
def test_sdk_booleans(raw, expected):
    assert SCHEMA.parse({"k": "2", "feature_dim": "1", "force_dense": raw})["force_dense"] is expected


def test_eval_metrics_forms():
    for raw in ('["ssd", "msd"]', "[ssd,msd]", "ssd,msd"):
        assert SCHEMA.parse({"k": "2", "feature_dim": "1", "eval_metrics": raw})["eval_metrics"] == ["ssd", "msd"]


def test_extra_literal_and_integer_like_floats():
    hp = SCHEMA.parse({"k": "2.0", "feature_dim": "1", "positive_example_weight_mult": "balanced"})
    assert hp["k"] == 2 and hp["positive_example_weight_mult"] == "balanced"


def test_missing_required_message():
    with pytest.raises(CustomerError) as e:
        SCHEMA.parse({})
    assert str(e.value) == "No value(s) were specified for 'k', 'feature_dim' which are required hyperparameter(s)"
    assert e.value.exit_code == 2


def test_unknown_name_is_named_with_a_hint():
    with pytest.raises(CustomerError, match=r"\('mini_batch_siz' was unexpected\).*Did you mean 'mini_batch_size'"):
        SCHEMA.parse({"k": "2", "feature_dim": "1", "mini_batch_siz": "10"})


@pytest.mark.parametrize("name,value,accepts", [
    ("k", "1", "an integer >= 2"),
    ("k", "x", "an integer >= 2"),
    ("k", "2.5", "an integer >= 2"),
    ("init_method", "kmeans", "one of the following: 'random', 'kmeans++'"),
    ("extra_center_factor", "0", "an integer >= 1 or 'auto'"),
    ("local_lloyd_tol", "2", "a number >= 0 and <= 1"),
    ("local_lloyd_tol", "nan", "a number >= 0 and <= 1"),
    ("eval_metrics", '["mse"]', "a JSON list drawn from: 'msd', 'ssd'"),
    ("force_dense", "yes", "'true', 'false'"),
    ("positive_example_weight_mult", "0", "a number > 0 or 'auto' or 'balanced'"),
])
def test_bad_value_message(name, value, accepts):
    given = {"k": "2", "feature_dim": "1", name: value}
    with pytest.raises(CustomerError) as e:
        SCHEMA.parse(given)
    assert str(e.value) == f"The value '{value}' is not valid for the '{name}' hyperparameter which accepts {accepts}"
