"""`smlocal train` flags -> the CreateTrainingJob request body they describe, validated by ``parse_job``.

So a job given by flags and the same job given as JSON are one spec, checked by one set of rules.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from smlocal.errors import CustomerError
from smlocal.runtime.jobfields import local_path, output_location
from smlocal.runtime.jobspec import JobSpec, parse_job
from smlocal.runtime.s3.uri import is_manifest_uri


def split_pair(value: str, flag: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise CustomerError(f"{flag} {value!r}: expected NAME=VALUE.")
    return key.strip(), val


def script_hyperparameters(entry_point: str | None, source_dir: str | None) -> dict[str, str]:
    """--entry-point/--source-dir as the SDK's hyperparameters (a source dir defaults to the script's folder)."""
    if not entry_point:
        return {}
    script = Path(entry_point)
    if source_dir is None and script.parent != Path("."):
        source_dir, entry_point = str(script.parent), script.name
    hps = {"sagemaker_program": json.dumps(entry_point)}
    if source_dir is not None:
        hps["sagemaker_submit_directory"] = json.dumps(local_path(source_dir, "--source-dir"))
    return hps


def _per_channel(options: Sequence[tuple[str, Sequence[str], str]]) -> dict[str, dict[str, str]]:
    """``--content-type train=text/csv`` and friends: channel -> {request field: value}."""
    per_channel: dict[str, dict[str, str]] = {}
    for flag, items, key in options:
        for item in items:
            name, val = split_pair(item, flag)
            per_channel.setdefault(name, {})[key] = val
    return per_channel


def _data_config(channels: Sequence[str], per_channel: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """InputDataConfig for ``--channel NAME=PATH`` items. A channel naming an SDK ``.amazon.manifest``
    is a ManifestFile channel unless ``--data-type`` says otherwise."""
    known = set()
    data_config = []
    for item in channels:
        name, path = split_pair(item, "--channel")
        known.add(name)
        extra = per_channel.get(name, {})
        s3 = {"S3DataType": extra.get("S3DataType", "ManifestFile" if is_manifest_uri(path) else "S3Prefix"),
              "S3Uri": path, "S3DataDistributionType": extra.get("S3DataDistributionType", "FullyReplicated")}
        entry: dict[str, Any] = {"ChannelName": name, "DataSource": {"S3DataSource": s3}}
        for key in ("ContentType", "CompressionType", "RecordWrapperType"):
            if key in extra:
                entry[key] = extra[key]
        if "Seed" in extra:
            entry["ShuffleConfig"] = {"Seed": extra["Seed"]}
        data_config.append(entry)
    for name in per_channel:
        if name not in known:
            raise CustomerError(f"A per-channel option names channel '{name}', which no --channel defines.")
    return data_config


def _algorithm_specification(algorithm: str | None, image: str | None, input_mode: str) -> dict[str, Any]:
    algo_spec: dict[str, Any] = {"TrainingInputMode": input_mode}
    if image:
        algo_spec["TrainingImage"] = image
    if algorithm:
        algo_spec["AlgorithmName"] = algorithm
    return algo_spec


def spec_from_flags(
    *,
    algorithm: str | None,
    image: str | None,
    channels: list[str],
    content_types: list[str] = (),
    distributions: list[str] = (),
    compressions: list[str] = (),
    record_wrappers: list[str] = (),
    shuffle_seeds: list[str] = (),
    hyperparameters: list[str] = (),
    input_mode: str = "File",
    output: str,
    instance_count: int = 1,
    job_name: str | None = None,
    max_runtime: int | None = None,
    environment: list[str] = (),
    entry_point: str | None = None,
    source_dir: str | None = None,
    data_types: list[str] = (),
    local_output: str | None = None,
) -> JobSpec:
    """Build the same request body the flags describe and validate it with ``parse_job``.

    ``entry_point``/``source_dir`` (script mode) become the SDK's ``sagemaker_program`` and
    ``sagemaker_submit_directory`` hyperparameters, JSON-encoded as the SDK sends them.
    A channel may be an ``s3://`` URI.
    """
    if source_dir and not entry_point:
        raise CustomerError("smlocal train: --source-dir needs --entry-point (the script to run in it).")
    if not algorithm and not image and not entry_point:
        raise CustomerError("smlocal train: give --job job.json, --algorithm kmeans|linear-learner, --image, "
                            "or --entry-point script.py [--source-dir DIR].")
    per_channel = _per_channel((("--content-type", content_types, "ContentType"),
                                ("--distribution", distributions, "S3DataDistributionType"),
                                ("--compression", compressions, "CompressionType"),
                                ("--record-wrapper", record_wrappers, "RecordWrapperType"),
                                ("--shuffle-seed", shuffle_seeds, "Seed"),
                                ("--data-type", data_types, "S3DataType")))
    data_config = _data_config(channels, per_channel)
    body: dict[str, Any] = {
        "AlgorithmSpecification": _algorithm_specification(algorithm, image, input_mode),
        "HyperParameters": {**dict(split_pair(h, "--hp") for h in hyperparameters),
                            **script_hyperparameters(entry_point, source_dir)},
        "InputDataConfig": data_config,
        "ResourceConfig": {"InstanceCount": instance_count, "InstanceType": "local"},
        "Environment": dict(split_pair(e, "--env") for e in environment),
    }
    if job_name:
        body["TrainingJobName"] = job_name
    if max_runtime:
        body["StoppingCondition"] = {"MaxRuntimeInSeconds": max_runtime}
    return parse_job(body, output_path=output_location(output, "--output"), local_output=local_output)
