"""The /opt/ml contract: paths and the three config files, read into plain dataclasses.

Nothing is read at import time: ``base_dir()`` resolves ``SAGEMAKER_BASE_DIR`` when called.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from smlocal.errors import CustomerError

DEFAULT_BASE_DIR = "/opt/ml"
BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"
RECORDIO_PROTOBUF = "application/x-recordio-protobuf"
CSV = "text/csv"


def base_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(BASE_DIR_ENV) or DEFAULT_BASE_DIR)


def positive_number(environ: Mapping[str, str], name: str, default, *, kind: type = float,
                    maximum: float | None = None, what: str = "a positive number",
                    error: type[CustomerError] = CustomerError):
    """The positive number an environment variable sets (``default`` when unset or empty); anything else
    is ``error`` naming the variable and what it must be."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value <= 0 or (maximum is not None and value > maximum):
        raise error(f"The environment variable {name}='{raw}' is not valid: it must be {what}.")
    return value

@dataclass(frozen=True)
class Paths:
    """Every location of the /opt/ml layout under one base directory."""

    base: Path

    @property
    def config_dir(self) -> Path:
        return self.base / "input" / "config"

    @property
    def hyperparameters_file(self) -> Path:
        return self.config_dir / "hyperparameters.json"

    @property
    def input_data_config_file(self) -> Path:
        return self.config_dir / "inputdataconfig.json"

    @property
    def resource_config_file(self) -> Path:
        return self.config_dir / "resourceconfig.json"

    @property
    def data_dir(self) -> Path:
        return self.base / "input" / "data"

    @property
    def model_dir(self) -> Path:
        return self.base / "model"

    @property
    def output_dir(self) -> Path:
        return self.base / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.output_dir / "data"

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @property
    def checkpoint_dir(self) -> Path:
        return self.base / "checkpoints"

    @property
    def code_dir(self) -> Path:
        return self.base / "code"

    def channel_dir(self, channel: str) -> Path:
        return self.data_dir / channel

    def pipe_path(self, channel: str, epoch: int) -> Path:
        return self.data_dir / pipe_name(channel, epoch)

    @property
    def created_dirs(self) -> tuple[Path, ...]:
        """The directories that exist before the algorithm starts (the runtime creates them)."""
        return (self.config_dir, self.data_dir, self.model_dir, self.output_data_dir, self.checkpoint_dir)


def pipe_name(channel: str, epoch: int) -> str:
    """A Pipe-mode channel's FIFO for one epoch: ``<channel>_<epoch>`` in the data directory."""
    return f"{channel}_{epoch}"


def parse_content_type(value: str | None, default: str = RECORDIO_PROTOBUF) -> tuple[str, dict[str, str]]:
    """``'text/csv; label_size=0'`` -> ``('text/csv', {'label_size': '0'})``; media type lower-cased."""
    if not value or not value.strip():
        return default, {}
    media, *rest = value.split(";")
    params: dict[str, str] = {}
    for part in rest:
        if "=" in part:
            key, _, val = part.partition("=")
            params[key.strip().lower()] = val.strip().strip('"')
    return media.strip().lower(), params


@dataclass(frozen=True)
class ChannelConfig:
    """One entry of inputdataconfig.json."""

    name: str
    content_type: str = RECORDIO_PROTOBUF
    content_params: Mapping[str, str] = field(default_factory=dict)
    input_mode: str = "File"  # File | Pipe | FastFile
    distribution: str = "FullyReplicated"
    record_wrapper: str = "None"
    compression: str = "None"

    @property
    def is_pipe(self) -> bool:
        return self.input_mode.lower() == "pipe"

    @property
    def is_csv(self) -> bool:
        return self.content_type == CSV

    def label_size(self, default: int = 1) -> int:
        raw = self.content_params.get("label_size")
        if raw is None:
            return default
        try:
            size = int(raw)
        except ValueError:
            raise CustomerError(
                f"Invalid label_size '{raw}' in the content type of channel '{self.name}'. "
                "Use text/csv;label_size=0 (no label) or text/csv;label_size=1."
            ) from None
        if size not in (0, 1):
            raise CustomerError(
                f"Channel '{self.name}': label_size={size} is not supported; use 0 (no label) or 1."
            )
        return size


@dataclass(frozen=True)
class ResourceConfig:
    current_host: str = "algo-1"
    hosts: tuple[str, ...] = ("algo-1",)
    network_interface_name: str = "eth0"


@dataclass(frozen=True)
class TrainingEnv:
    paths: Paths
    hyperparameters: Mapping[str, str]
    channels: Mapping[str, ChannelConfig]
    resources: ResourceConfig

    @property
    def model_file(self) -> Path:
        return self.paths.model_dir / f"model_{self.resources.current_host}"


def _read_json(path: Path, required: bool) -> dict:
    if not path.exists():
        if required:
            raise CustomerError(f"Missing configuration file {path}. It must hold a JSON object.")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except json.JSONDecodeError as exc:
        raise CustomerError(f"Configuration file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CustomerError(f"Configuration file {path} must hold a JSON object, not {type(data).__name__}.")
    return data


def channel_from_json(name: str, entry: Mapping) -> ChannelConfig:
    if not isinstance(entry, Mapping):
        raise CustomerError(f"inputdataconfig.json: channel '{name}' must be a JSON object.")
    media, params = parse_content_type(entry.get("ContentType"))
    return ChannelConfig(
        name=name,
        content_type=media,
        content_params=params,
        input_mode=str(entry.get("TrainingInputMode", "File")),
        distribution=str(entry.get("S3DistributionType", "FullyReplicated")),
        record_wrapper=str(entry.get("RecordWrapperType", "None")),
        compression=str(entry.get("CompressionType", "None")),
    )


def load_training_env(base: Path | None = None) -> TrainingEnv:
    """Read the three config files under ``base`` (default: ``base_dir()``)."""
    paths = Paths(base if base is not None else base_dir())
    hps = _read_json(paths.hyperparameters_file, required=False)
    channels = _read_json(paths.input_data_config_file, required=False)
    resources = _read_json(paths.resource_config_file, required=False)
    hosts = tuple(resources.get("hosts") or [resources.get("current_host", "algo-1")])
    current = str(resources.get("current_host", hosts[0]))
    if current not in hosts:
        raise CustomerError(f"resourceconfig.json: current_host '{current}' is not among hosts {list(hosts)}.")
    return TrainingEnv(
        paths=paths,
        hyperparameters={str(k): str(v) for k, v in hps.items()},
        channels={name: channel_from_json(name, entry) for name, entry in channels.items()},
        resources=ResourceConfig(
            current_host=current,
            hosts=hosts,
            network_interface_name=str(resources.get("network_interface_name", "eth0")),
        ),
    )
