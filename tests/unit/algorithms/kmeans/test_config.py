"""k-means hyperparameters ("K-Means Hyperparameters" in the SageMaker developer guide): names, container
defaults, validation messages, ``auto``."""
from __future__ import annotations

import json
import logging

import pytest

from smlocal.algorithms.kmeans.config import SCHEMA, KMeansConfig, configure, resolve_config
from smlocal.environment import ChannelConfig, Paths, ResourceConfig, TrainingEnv
from smlocal.errors import CustomerError

# the container's default-input.json as the built-in logs it (a real k-means training log of 2021)
DEFAULT_INPUT = (
    "{'init_method': 'random', 'mini_batch_size': '5000', 'epochs': '1', 'extra_center_factor': 'auto', "
    "'local_lloyd_max_iter': '300', 'local_lloyd_tol': '0.0001', 'local_lloyd_init_method': 'kmeans++', "
    "'local_lloyd_num_trials': 'auto', 'half_life_time_size': '0', 'eval_metrics': '[\"msd\"]', "
    "'force_dense': 'true', '_disable_wait_to_read': 'false', '_enable_profiler': 'false', '_kvstore': 'auto', "
    "'_log_level': 'info', '_num_gpus': 'auto', '_num_kv_servers': '1', '_num_slices': '1', "
    "'_tuning_objective_metric': ''}"
)


def test_defaults_are_the_containers_default_input_json_in_order():
    assert repr(SCHEMA.defaults()) == DEFAULT_INPUT
    assert set(SCHEMA.params) == set(SCHEMA.defaults()) | {"k", "feature_dim"}


def test_required_names_are_reported_like_the_built_in():
    with pytest.raises(CustomerError) as err:
        SCHEMA.parse({})
    assert str(err.value) == "No value(s) were specified for 'k', 'feature_dim' which are required hyperparameter(s)"
    with pytest.raises(CustomerError, match="'feature_dim'"):
        SCHEMA.parse({"k": "3"})


@pytest.mark.parametrize("name,value", [
    ("k", "1"), ("k", "2.5"), ("k", "ten"), ("feature_dim", "0"), ("mini_batch_size", "0"), ("epochs", "-1"),
    ("init_method", "kmeans"), ("extra_center_factor", "0"), ("local_lloyd_tol", "2"),
    ("local_lloyd_init_method", "k-means++"), ("local_lloyd_num_trials", "0"), ("half_life_time_size", "-5"),
    ("eval_metrics", '["msd", "mse"]'), ("force_dense", "maybe"), ("_num_gpus", "-1"),
])
def test_bad_values_name_the_hyperparameter(name, value):
    hps = {"k": "3", "feature_dim": "4", name: value}
    with pytest.raises(CustomerError) as err:
        SCHEMA.parse(hps)
    assert str(err.value).startswith(f"The value '{value}' is not valid for the '{name}' hyperparameter which accepts")


def test_unknown_name_is_rejected():
    with pytest.raises(CustomerError, match="'mini_batch_siz' was unexpected"):
        SCHEMA.parse({"k": "3", "feature_dim": "4", "mini_batch_siz": "10"})


def test_auto_resolves_as_the_built_in_and_values_are_typed():
    cfg = resolve_config(SCHEMA.parse({"k": "8", "feature_dim": "7"}))
    assert cfg == KMeansConfig(k=8, feature_dim=7)
    assert cfg.extra_center_factor == 10 and cfg.local_lloyd_num_trials == 10 and cfg.num_centers == 80
    assert cfg.eval_metrics == ("msd",) and cfg.force_dense is True and cfg.num_gpus == "auto"
    cfg = resolve_config(SCHEMA.parse({
        "k": "3", "feature_dim": "2", "extra_center_factor": "4", "local_lloyd_num_trials": "2",
        "eval_metrics": json.dumps(["ssd", "msd"]), "force_dense": "False", "init_method": "kmeans++",
        "local_lloyd_tol": "0.5", "half_life_time_size": "100", "_num_gpus": "0", "epochs": "3",
    }))
    assert (cfg.extra_center_factor, cfg.local_lloyd_num_trials, cfg.num_centers) == (4, 2, 12)
    assert cfg.eval_metrics == ("ssd", "msd") and cfg.force_dense is False and cfg.num_gpus == 0
    assert (cfg.init_method, cfg.local_lloyd_tol, cfg.half_life_time_size, cfg.epochs) == ("kmeans++", 0.5, 100, 3)
    # Spark's form of the list
    assert resolve_config(SCHEMA.parse({"k": "3", "feature_dim": "2", "eval_metrics": "msd,ssd"})).eval_metrics == \
        ("msd", "ssd")


def test_configure_logs_the_three_configuration_lines(tmp_path, caplog):
    env = TrainingEnv(Paths(tmp_path), {"k": "8", "feature_dim": "7"}, {"train": ChannelConfig("train")},
                      ResourceConfig())
    logger = logging.getLogger("smlocal")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="smlocal"):
            cfg = configure(env, logger)
    finally:
        logger.removeHandler(caplog.handler)
    assert cfg.k == 8
    text = caplog.text
    assert f"(default-input.json): {DEFAULT_INPUT}" in text
    assert f"Merging with provided configuration from {tmp_path / 'input/config/hyperparameters.json'}: " \
           "{'k': '8', 'feature_dim': '7'}" in text
    assert "Final configuration: {'init_method': 'random'" in text and "'k': '8', 'feature_dim': '7'}" in text
    assert "'extra_center_factor' was set to 'auto', evaluated to 10." in text
