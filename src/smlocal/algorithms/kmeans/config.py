"""k-means hyperparameters: the schema, the typed configuration, ``auto`` resolution, the configuration logs.

Names, defaults and allowed values are those of the SageMaker developer guide page "K-Means
Hyperparameters"; the defaults are the strings of the container's ``default-input.json``, which the
built-in logs when a job starts. ``auto`` resolves to what the built-in's own logs show it evaluates to.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from smlocal.algorithms.common.hyperparameters import AUTO, Param, Schema
from smlocal.algorithms.common.memory import check_memory
from smlocal.algorithms.kmeans.streaming import KMEANS_PP, RANDOM
from smlocal.environment import TrainingEnv

# Real built-in training logs say "'extra_center_factor' was set to 'auto', evaluated to 10."
AUTO_EXTRA_CENTER_FACTOR = 10
# With 'auto', real built-in logs show ten shrink attempts: "local kmeans attempt #0" .. "#9".
AUTO_LOCAL_LLOYD_TRIALS = 10

# Order: required first (the missing-names message lists 'k', 'feature_dim'), then default-input.json's.
SCHEMA = Schema("kmeans", [
    Param("k", "int", minimum=2),
    Param("feature_dim", "int", minimum=1),
    Param("init_method", "str", "random", choices=(RANDOM, KMEANS_PP)),
    Param("mini_batch_size", "int", "5000", minimum=1),
    Param("epochs", "int", "1", minimum=1),
    Param("extra_center_factor", "int", AUTO, minimum=1, auto=True),
    Param("local_lloyd_max_iter", "int", "300", minimum=1),
    Param("local_lloyd_tol", "float", "0.0001", minimum=0, maximum=1),
    Param("local_lloyd_init_method", "str", "kmeans++", choices=(RANDOM, KMEANS_PP)),
    Param("local_lloyd_num_trials", "int", AUTO, minimum=1, auto=True),
    Param("half_life_time_size", "int", "0", minimum=0),
    Param("eval_metrics", "list", '["msd"]', choices=("msd", "ssd")),
    Param("force_dense", "bool", "true"),
    Param("_disable_wait_to_read", "bool", "false"),
    Param("_enable_profiler", "bool", "false"),
    Param("_kvstore", "str", AUTO,
          choices=(AUTO, "local", "device", "dist_sync", "dist_device_sync", "dist_async")),
    Param("_log_level", "str", "info"),
    Param("_num_gpus", "int", AUTO, minimum=0, auto=True),
    Param("_num_kv_servers", "int", "1", minimum=1),
    Param("_num_slices", "int", "1", minimum=1),
    Param("_tuning_objective_metric", "str", ""),
])


@dataclass(frozen=True)
class KMeansConfig:
    """Typed, resolved hyperparameters (``auto`` replaced by what the built-in evaluates it to)."""

    k: int
    feature_dim: int
    mini_batch_size: int = 5000
    epochs: int = 1
    init_method: str = RANDOM
    extra_center_factor: int = AUTO_EXTRA_CENTER_FACTOR
    local_lloyd_max_iter: int = 300
    local_lloyd_tol: float = 1e-4
    local_lloyd_init_method: str = KMEANS_PP
    local_lloyd_num_trials: int = AUTO_LOCAL_LLOYD_TRIALS
    half_life_time_size: int = 0
    eval_metrics: tuple[str, ...] = ("msd",)
    force_dense: bool = True
    num_gpus: int | str = AUTO
    log_level: str = "info"

    @property
    def num_centers(self) -> int:
        """K, the number of streaming centers (before capping by the data available)."""
        return self.k * self.extra_center_factor


def resolve_config(values: dict[str, Any]) -> KMeansConfig:
    """``SCHEMA.parse`` output -> ``KMeansConfig``, resolving ``auto`` as the built-in does."""
    factor = values["extra_center_factor"]
    trials = values["local_lloyd_num_trials"]
    return KMeansConfig(
        k=values["k"],
        feature_dim=values["feature_dim"],
        mini_batch_size=values["mini_batch_size"],
        epochs=values["epochs"],
        init_method=values["init_method"],
        extra_center_factor=AUTO_EXTRA_CENTER_FACTOR if factor == AUTO else factor,
        local_lloyd_max_iter=values["local_lloyd_max_iter"],
        local_lloyd_tol=values["local_lloyd_tol"],
        local_lloyd_init_method=values["local_lloyd_init_method"],
        local_lloyd_num_trials=AUTO_LOCAL_LLOYD_TRIALS if trials == AUTO else trials,
        half_life_time_size=values["half_life_time_size"],
        eval_metrics=tuple(dict.fromkeys(values["eval_metrics"])),
        force_dense=values["force_dense"],
        num_gpus=values["_num_gpus"],
        log_level=values["_log_level"],
    )


def configure(env: TrainingEnv, log: logging.Logger) -> KMeansConfig:
    """Log the three configuration lines of the built-ins and return the validated configuration."""
    defaults = SCHEMA.defaults()
    provided = dict(env.hyperparameters)
    log.info(f"Reading default configuration from {__name__} (default-input.json): {defaults}")
    log.info(f"Merging with provided configuration from {env.paths.config_dir / 'hyperparameters.json'}: "
             f"{provided}")
    values = SCHEMA.parse(provided)
    log.info(f"Final configuration: {({**defaults, **provided})}")
    cfg = resolve_config(values)
    for name in ("extra_center_factor", "local_lloyd_num_trials"):
        if values[name] == AUTO:
            log.info(f"'{name}' was set to 'auto', evaluated to {getattr(cfg, name)}.")
    check_memory(memory_needed(cfg), f"feature_dim={cfg.feature_dim} with k={cfg.k} x extra_center_factor="
                 f"{cfg.extra_center_factor} centers" + (f" and mini_batch_size={cfg.mini_batch_size} dense rows"
                                                         if cfg.force_dense else ""),
                 "Set feature_dim to the number of features in the data, or lower k or mini_batch_size.")
    return cfg


def memory_needed(cfg: KMeansConfig) -> int:
    """Bytes of the arrays that grow with feature_dim: the K centers (float32 on the device, their sums and
    a float64 copy for the local Lloyd reduction) and, with force_dense, a densified batch and its copy."""
    centers = cfg.feature_dim * cfg.k * cfg.extra_center_factor * (4 + 8 + 8)
    batch = cfg.feature_dim * cfg.mini_batch_size * 4 * 2 if cfg.force_dense else 0
    return centers + batch
