"""The environment a user script sees: the training toolkit's ``SM_*`` names and values (pure functions).

Names and encodings follow sagemaker-training-toolkit (``Environment.to_env_vars`` and
``mapping.to_env_vars``; its ``ENVIRONMENT_VARIABLES.md`` lists them): strings pass through, lists
and dicts are JSON with sorted keys and compact separators, hyperparameters are JSON-decoded where possible,
and the ``sagemaker_``-prefixed ones are split off from the user's.
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

from smlocal.environment import TrainingEnv

SAGEMAKER_PREFIX = "sagemaker_"
PROGRAM_ENV = "SAGEMAKER_PROGRAM"


def decode_value(raw: str) -> Any:
    """``'"train.py"'`` -> ``'train.py'``, ``'3'`` -> ``3``; a string that is not JSON stays as it is."""
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return raw


def program_name(hyperparameters: Mapping[str, str], environ: Mapping[str, str]) -> str | None:
    """The user program a job names (``SAGEMAKER_PROGRAM``, else the SDK's ``sagemaker_program``), or None
    when it runs a built-in algorithm."""
    if environ.get(PROGRAM_ENV):
        return environ[PROGRAM_ENV]
    raw = hyperparameters.get("sagemaker_program")
    return str(decode_value(raw)) if raw is not None else None


def split_hyperparameters(raw: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(user hyperparameters, sagemaker_* hyperparameters), values JSON-decoded."""
    decoded = {k: decode_value(v) for k, v in raw.items()}
    user = {k: v for k, v in decoded.items() if not k.startswith(SAGEMAKER_PREFIX)}
    framework = {k: v for k, v in decoded.items() if k.startswith(SAGEMAKER_PREFIX)}
    return user, framework


def _encode(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def to_cmd_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """``{"epochs": 3, "lr": 0.1}`` -> ``["--epochs", "3", "--lr", "0.1"]`` (sorted by name, like the toolkit)."""
    args: list[str] = []
    for name in sorted(hyperparameters):
        args += [f"--{name}", _encode(hyperparameters[name])]
    return args


def env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def toolkit_environment(env: TrainingEnv, user_entry_point: str, module_dir: str, num_gpus: int,
                        num_cpus: int | None = None) -> dict[str, str]:
    """Every ``SM_*`` variable for the script, computed from the job's config (no I/O)."""
    paths = env.paths
    user_hps, framework_hps = split_hyperparameters(env.hyperparameters)
    channels = sorted(env.channels)
    channel_dirs = {c: str(paths.channel_dir(c)) for c in channels}
    module_name = user_entry_point[:-3] if user_entry_point.endswith(".py") else user_entry_point
    resource = {"current_host": env.resources.current_host, "hosts": list(env.resources.hosts),
                "network_interface_name": env.resources.network_interface_name}
    input_data_config = {
        name: {"ContentType": ch.content_type, "TrainingInputMode": ch.input_mode,
               "S3DistributionType": ch.distribution, "RecordWrapperType": ch.record_wrapper}
        for name, ch in env.channels.items()
    }
    values: dict[str, Any] = {
        "model_dir": str(paths.model_dir),
        "channels": channels,
        "hps": user_hps,
        "current_host": env.resources.current_host,
        "hosts": list(env.resources.hosts),
        "network_interface_name": env.resources.network_interface_name,
        "num_gpus": num_gpus,
        "num_cpus": num_cpus if num_cpus is not None else (os.cpu_count() or 1),
        "output_data_dir": str(paths.output_data_dir),
        "output_dir": str(paths.output_dir),
        "output_intermediate_dir": str(paths.output_dir / "intermediate"),
        "input_dir": str(paths.base / "input"),
        "input_config_dir": str(paths.config_dir),
        "input_data_config": input_data_config,
        "resource_config": resource,
        "module_name": module_name,
        "module_dir": module_dir,
        "user_entry_point": user_entry_point,
        "user_args": to_cmd_args(user_hps),
        "framework_params": framework_hps,
        "log_level": 20,
    }
    values["training_env"] = {
        **values,
        "channel_input_dirs": channel_dirs,
        "hyperparameters": user_hps,
        "additional_framework_parameters": framework_hps,
    }
    out = {f"SM_{env_name(k)}": _encode(v) for k, v in values.items()}
    out.update({f"SM_CHANNEL_{env_name(c)}": d for c, d in channel_dirs.items()})
    out.update({f"SM_HP_{env_name(k)}": _encode(v) for k, v in user_hps.items()})
    return out
