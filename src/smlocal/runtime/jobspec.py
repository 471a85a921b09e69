"""The training job spec: a CreateTrainingJob request body validated into a frozen JobSpec.

Field names and rules follow the SageMaker API so a request written for SageMaker runs here unchanged.
Every error is a ``CustomerError`` naming the field path (``InputDataConfig[0].DataSource...``).
Fields that only make sense on AWS (RoleArn, Tags, VpcConfig, ...) are accepted and reported as
ignored (``JobSpec.notes``). A channel's contents are not read here: ``sources`` lists every channel,
once per job, and checks what is in it. CLI flags become a request body in ``jobflags``.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from smlocal.algorithms import NAMES, by_image_repository, normalize
from smlocal.runtime.jobfields import (choice_field, field_error, int_field, local_path, object_field,
                                       output_location, s3_location, string_field, string_map_field)
from smlocal.runtime.s3.uri import DATA_TYPES, is_s3_uri
from smlocal.scriptmode.toolkit_env import decode_value, program_name

INPUT_MODES = ("File", "Pipe", "FastFile")
DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
SHARDED = "ShardedByS3Key"
COMPRESSIONS = ("None", "Gzip")
RECORD_WRAPPERS = ("None", "RecordIO")

DEFAULT_LOCAL_OUTPUT = "smlocal-output"  # local job files when the output is s3:// (relative to the cwd)
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")
_ENV_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,511}$")
# an ECR registry of any partition, as sagemaker.image_uris builds them: <account>.dkr.ecr[-fips].<region>.
# then amazonaws.com, amazonaws.com.cn (China) or an ISO partition's domain (c2s.ic.gov, sc2s.sgov.gov, ...)
_ECR_HOST = re.compile(r"^\d+\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.[a-z0-9.-]+$")

# Accepted top-level fields. Values: "use" (we act on it) or "ignore" (AWS-only, noted as ignored).
_TOP_LEVEL = {
    "TrainingJobName": "use", "AlgorithmSpecification": "use", "HyperParameters": "use",
    "InputDataConfig": "use", "OutputDataConfig": "use", "ResourceConfig": "use",
    "StoppingCondition": "use", "Environment": "use",
    "RoleArn": "ignore", "VpcConfig": "ignore", "Tags": "ignore", "EnableNetworkIsolation": "ignore",
    "EnableInterContainerTrafficEncryption": "ignore", "EnableManagedSpotTraining": "ignore",
    "CheckpointConfig": "ignore", "DebugHookConfig": "ignore", "DebugRuleConfigurations": "ignore",
    "TensorBoardOutputConfig": "ignore", "ExperimentConfig": "ignore", "ProfilerConfig": "ignore",
    "ProfilerRuleConfigurations": "ignore", "RetryStrategy": "ignore", "RemoteDebugConfig": "ignore",
    "InfraCheckConfig": "ignore", "SessionChainingConfig": "ignore",
}
_ALGO_SPEC = {"TrainingImage", "AlgorithmName", "TrainingInputMode", "MetricDefinitions",
              "EnableSageMakerMetricsTimeSeries", "ContainerEntrypoint", "ContainerArguments",
              "TrainingImageConfig"}
_ALGO_IGNORED = ("MetricDefinitions", "EnableSageMakerMetricsTimeSeries", "TrainingImageConfig")
_CHANNEL = {"ChannelName", "DataSource", "ContentType", "CompressionType", "RecordWrapperType",
            "InputMode", "ShuffleConfig"}
_DATA_SOURCE = {"S3DataSource", "FileSystemDataSource"}
_S3_SOURCE = {"S3DataType", "S3Uri", "S3DataDistributionType", "AttributeNames", "InstanceGroupNames"}
_OUTPUT = {"S3OutputPath", "KmsKeyId", "CompressionType"}
_RESOURCE = {"InstanceType", "InstanceCount", "VolumeSizeInGB", "VolumeKmsKeyId",
             "KeepAlivePeriodInSeconds", "InstanceGroups"}
_STOPPING = {"MaxRuntimeInSeconds", "MaxWaitTimeInSeconds", "MaxPendingTimeInSeconds"}


@dataclass(frozen=True)
class ChannelSpec:
    """One InputDataConfig entry, with the job-level input mode already applied."""

    name: str
    source: str  # absolute local path (file or directory), or an s3:// URI
    content_type: str | None = None
    input_mode: str = "File"
    distribution: str = "FullyReplicated"
    compression: str = "None"
    record_wrapper: str = "None"
    shuffle_seed: int | None = None
    data_type: str = "S3Prefix"  # S3Prefix | ManifestFile (ManifestFile: s3:// sources only)

    @property
    def is_pipe(self) -> bool:
        return self.input_mode == "Pipe"

    @property
    def is_s3(self) -> bool:
        """The one rule for "is this channel in S3": its source is an ``s3://`` URI."""
        return is_s3_uri(self.source)

    @property
    def is_sharded(self) -> bool:
        return self.distribution == SHARDED


@dataclass(frozen=True)
class JobSpec:
    job_name: str
    output_path: str  # absolute local directory; the job's files go to <output_path>/<job_name>/
    # S3OutputPath when it is s3://: model.tar.gz and output.tar.gz are also uploaded to
    # <s3_output_path>/<job_name>/output/ (output_path then holds the local record, logs and copies)
    s3_output_path: str | None = None
    channels: tuple[ChannelSpec, ...] = ()
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None  # a Docker image to run (None: smlocal's own container)
    algorithm: str | None = None  # SMLOCAL_ALGORITHM for smlocal's container
    input_mode: str = "File"
    instance_count: int = 1
    instance_type: str = "local"
    max_runtime: int | None = None  # seconds
    environment: Mapping[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] | None = None  # ContainerEntrypoint (+ ContainerArguments)
    source_dir: str | None = None  # script mode: the user's code (directory or .tar.gz) -> /opt/ml/code
    notes: tuple[str, ...] = ()  # accepted fields without local effect, as messages for the user

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(f"algo-{i + 1}" for i in range(self.instance_count))

    @property
    def job_dir(self) -> Path:
        return Path(self.output_path) / self.job_name

    def with_overrides(self, **changes: Any) -> "JobSpec":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def default_job_name(prefix: str, now: _dt.datetime | None = None) -> str:
    """SageMaker SDK style: ``<prefix>-YYYY-MM-DD-HH-MM-SS-mmm``."""
    now = now or _dt.datetime.now()
    stamp = now.strftime("%Y-%m-%d-%H-%M-%S-") + f"{now.microsecond // 1000:03d}"
    base = re.sub(r"[^a-zA-Z0-9-]+", "-", prefix).strip("-")[:38] or "smlocal"
    return f"{base}-{stamp}"


def image_repository(image: str) -> str:
    """``acct.dkr.ecr.region.amazonaws.com/kmeans:1`` -> ``kmeans`` (tag or digest dropped)."""
    return image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]


def is_aws_image(image: str | None) -> bool:
    """An image in an AWS ECR registry of any region and partition."""
    return bool(image) and "/" in image and _ECR_HOST.match(image.split("/", 1)[0]) is not None


def algorithm_from_image(image: str | None) -> str | None:
    """The algorithm an AWS built-in image URI names (``.../kmeans:1`` -> ``kmeans``), else None.

    AWS built-in images are ``<account>.dkr.ecr.<region>.<partition domain>/<repository>:<tag>``."""
    if not is_aws_image(image):
        return None
    algorithm = by_image_repository(image_repository(image))
    return algorithm.name if algorithm is not None else None


def validate_job_name(name: Any, path: str = "TrainingJobName") -> str:
    name = string_field(name, path)
    if not _JOB_NAME.match(name):
        raise field_error(path, f"{name!r} must be 1-63 letters, digits or '-', starting with a letter or digit.")
    return name


# ----------------------------------------------------------------------------------------- channels
def _channel_location(s3: dict, spath: str, name: str, base: Path | None) -> tuple[str, str]:
    """(S3DataType, source) of a channel: an ``s3://`` URI as it is (listed and checked when the job
    runs, before any container starts), else an existing local directory or file."""
    data_type = choice_field(s3.get("S3DataType", "S3Prefix"), f"{spath}.S3DataType", DATA_TYPES)
    if "AttributeNames" in s3:
        raise field_error(f"{spath}.AttributeNames", "augmented manifests are not supported locally.")
    uri = string_field(s3.get("S3Uri"), f"{spath}.S3Uri")
    if is_s3_uri(uri):
        return data_type, s3_location(uri, f"{spath}.S3Uri")
    if data_type != "S3Prefix":
        raise field_error(f"{spath}.S3DataType", f"{data_type} needs an s3:// S3Uri (a manifest in S3); for a "
                                                 "local directory or file use S3Prefix.")
    location = local_path(uri, f"{spath}.S3Uri", base)
    if not Path(location).exists():
        raise field_error(f"{spath}.S3Uri", f"{location} does not exist. Give the directory or file holding "
                                            f"the '{name}' channel's data.")
    return data_type, location


def _s3_data_source(entry: dict, path: str) -> dict:
    if "DataSource" not in entry:
        raise field_error(f"{path}.DataSource", "is required (DataSource.S3DataSource.S3Uri = a local path).")
    source = object_field(entry["DataSource"], f"{path}.DataSource", _DATA_SOURCE)
    if "FileSystemDataSource" in source:
        raise field_error(f"{path}.DataSource.FileSystemDataSource",
                          "EFS/FSx sources are not supported locally; use S3DataSource with a local path.")
    return object_field(source.get("S3DataSource"), f"{path}.DataSource.S3DataSource", _S3_SOURCE)


def _parse_channel(entry: Any, path: str, job_mode: str, base: Path | None) -> ChannelSpec:
    entry = object_field(entry, path, _CHANNEL)
    name = string_field(entry.get("ChannelName"), f"{path}.ChannelName")
    if not _CHANNEL_NAME.match(name):
        raise field_error(f"{path}.ChannelName", f"{name!r} must be 1-64 letters, digits, '.', '-' or '_'.")
    s3 = _s3_data_source(entry, path)
    spath = f"{path}.DataSource.S3DataSource"
    data_type, location = _channel_location(s3, spath, name, base)
    mode = choice_field(entry.get("InputMode", job_mode), f"{path}.InputMode", INPUT_MODES)
    seed = None
    if "ShuffleConfig" in entry:
        shuffle = object_field(entry["ShuffleConfig"], f"{path}.ShuffleConfig", {"Seed"})
        seed = int_field(shuffle.get("Seed"), f"{path}.ShuffleConfig.Seed", minimum=0)
    content_type = entry.get("ContentType")
    if content_type is not None:
        content_type = string_field(content_type, f"{path}.ContentType")
    return ChannelSpec(
        name=name,
        source=location,
        content_type=content_type,
        input_mode="File" if mode == "FastFile" else mode,  # FastFile streams on demand: File here
        distribution=choice_field(s3.get("S3DataDistributionType", "FullyReplicated"),
                                  f"{spath}.S3DataDistributionType", DISTRIBUTIONS),
        compression=choice_field(entry.get("CompressionType", "None"), f"{path}.CompressionType", COMPRESSIONS),
        record_wrapper=choice_field(entry.get("RecordWrapperType", "None"), f"{path}.RecordWrapperType",
                                    RECORD_WRAPPERS),
        shuffle_seed=seed,
        data_type=data_type,
    )


def _channels(body: dict, job_mode: str, base: Path | None) -> tuple[tuple[ChannelSpec, ...], list[str]]:
    """InputDataConfig: the channels, and notes on Pipe-only fields given to File-mode channels
    (CompressionType is not one: File-mode gzip files are decompressed as Pipe data is)."""
    channels_raw = body.get("InputDataConfig", [])
    if not isinstance(channels_raw, list):
        raise field_error("InputDataConfig", "must be a list of channels.")
    channels = tuple(_parse_channel(c, f"InputDataConfig[{i}]", job_mode, base)
                     for i, c in enumerate(channels_raw))
    notes = []
    for i, ch in enumerate(channels):
        if not ch.is_pipe and ch.record_wrapper != "None":
            notes.append(f"InputDataConfig[{i}].RecordWrapperType={ch.record_wrapper} applies to Pipe mode only; "
                         f"in File mode channel '{ch.name}' gets its files as they are")
    names = [c.name for c in channels]
    for name in names:
        if names.count(name) > 1:
            raise field_error("InputDataConfig", f"channel name {name!r} is used more than once.")
    return channels, notes


# ---------------------------------------------------------------------------------- the other fields
class _AlgorithmSpec(NamedTuple):
    image: str | None
    algorithm: str | None
    input_mode: str
    entrypoint: tuple[str, ...] | None
    notes: list[str]


def _algorithm_name(algo: dict) -> str:
    """AlgorithmName as a registered algorithm (an ARN's last part; any case, '_' or '-')."""
    name = normalize(string_field(algo["AlgorithmName"], "AlgorithmSpecification.AlgorithmName").rsplit("/", 1)[-1])
    if name not in NAMES:
        raise field_error("AlgorithmSpecification.AlgorithmName",
                          f"{algo['AlgorithmName']!r} is not available locally; use one of: {', '.join(NAMES)}.")
    return name


def _entrypoint(algo: dict) -> tuple[str, ...] | None:
    if "ContainerEntrypoint" not in algo and "ContainerArguments" not in algo:
        return None
    parts = []
    for key in ("ContainerEntrypoint", "ContainerArguments"):
        value = algo.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise field_error(f"AlgorithmSpecification.{key}", "must be a list of strings.")
        parts.extend(value)
    return tuple(parts)


def _algorithm_spec(body: dict) -> _AlgorithmSpec:
    if "AlgorithmSpecification" not in body:
        raise field_error("AlgorithmSpecification",
                          "is required (TrainingImage or AlgorithmName, TrainingInputMode).")
    algo = object_field(body["AlgorithmSpecification"], "AlgorithmSpecification", _ALGO_SPEC)
    image = algo.get("TrainingImage")
    if image is not None:
        image = string_field(image, "AlgorithmSpecification.TrainingImage")
    algorithm = algorithm_from_image(image)
    if algorithm is not None:
        image = None  # an AWS built-in image cannot be pulled: smlocal's own container stands in
    if "AlgorithmName" in algo:
        algorithm = _algorithm_name(algo)
    job_mode = choice_field(algo.get("TrainingInputMode", "File"), "AlgorithmSpecification.TrainingInputMode",
                            INPUT_MODES)
    entrypoint = _entrypoint(algo)
    notes = [f"AlgorithmSpecification.{k} is AWS-only and ignored locally" for k in algo if k in _ALGO_IGNORED]
    return _AlgorithmSpec(image, algorithm, "File" if job_mode == "FastFile" else job_mode, entrypoint, notes)


def _output(body: dict, output_path: str | None, local_output: str | None,
            base: Path | None) -> tuple[str, str | None]:
    """(local output directory, s3:// S3OutputPath or None); ``output_path`` (--output) wins."""
    if output_path is None:
        out = object_field(body.get("OutputDataConfig"), "OutputDataConfig", _OUTPUT) \
            if "OutputDataConfig" in body else {}
        if "S3OutputPath" not in out:
            raise field_error("OutputDataConfig.S3OutputPath", "is required (a local directory or s3:// URI), or "
                                                               "pass --output.")
        output_path = output_location(string_field(out["S3OutputPath"], "OutputDataConfig.S3OutputPath"),
                                      "OutputDataConfig.S3OutputPath", base)
    else:
        output_path = output_location(output_path, "--output")
        if "OutputDataConfig" in body:
            object_field(body["OutputDataConfig"], "OutputDataConfig", _OUTPUT)
    if is_s3_uri(output_path):
        return local_path(local_output or DEFAULT_LOCAL_OUTPUT, "--local-output"), output_path
    return output_path, None


def _resources(body: dict) -> tuple[int, str, int | None]:
    """(InstanceCount, InstanceType, MaxRuntimeInSeconds or None)."""
    resources = object_field(body.get("ResourceConfig", {}), "ResourceConfig", _RESOURCE)
    if "InstanceGroups" in resources:
        raise field_error("ResourceConfig.InstanceGroups", "heterogeneous clusters are not supported locally; "
                                                           "use InstanceCount.")
    count = int_field(resources.get("InstanceCount", 1), "ResourceConfig.InstanceCount")
    instance_type = string_field(resources.get("InstanceType", "local"), "ResourceConfig.InstanceType")
    stopping = object_field(body.get("StoppingCondition", {}), "StoppingCondition", _STOPPING)
    max_runtime = None
    if "MaxRuntimeInSeconds" in stopping:
        max_runtime = int_field(stopping["MaxRuntimeInSeconds"], "StoppingCondition.MaxRuntimeInSeconds")
    return count, instance_type, max_runtime


def is_script_mode(hyperparameters: Mapping[str, str], environment: Mapping[str, str]) -> bool:
    """A user script is named (the SDK's sagemaker_program hyperparameter or SAGEMAKER_PROGRAM)."""
    return program_name(hyperparameters, environment) is not None


def script_source(hyperparameters: Mapping[str, str], base: Path | None = None) -> str | None:
    """The code location named by ``sagemaker_submit_directory`` (JSON-encoded, as the SDK sends it): a
    local directory or archive, or an ``s3://`` archive (the SDK's sourcedir.tar.gz, fetched when the
    job runs)."""
    raw = hyperparameters.get("sagemaker_submit_directory")
    if raw is None:
        return None
    location = decode_value(raw)
    path = "HyperParameters.sagemaker_submit_directory"
    if not isinstance(location, str):
        raise field_error(path, f"{raw!r}: give a local directory or .tar.gz, or an s3:// .tar.gz.")
    if is_s3_uri(location):
        if not location.endswith((".tar.gz", ".tgz", ".tar")):
            raise field_error(path, f"{location} is not a .tar.gz archive (an S3 source is the SDK's "
                                    "sourcedir.tar.gz).")
        return s3_location(location, path)
    source = local_path(location, path, base)
    if not Path(source).exists():
        raise field_error(path, f"{source} does not exist.")
    if not (Path(source).is_dir() or Path(source).name.endswith((".tar.gz", ".tgz", ".tar"))):
        raise field_error(path, f"{source} is neither a directory nor a .tar.gz archive.")
    return source


# ------------------------------------------------------------------------------------------ parsing
def parse_job(body: Any, base: Path | None = None, output_path: str | None = None,
              local_output: str | None = None) -> JobSpec:
    """Validate a CreateTrainingJob request body. ``base``: directory relative paths are taken from.

    ``output_path`` (e.g. the CLI's ``--output``) overrides ``OutputDataConfig.S3OutputPath``. When the
    output is an ``s3://`` URI, the job's local files (record, logs, artifact copies) go below
    ``local_output`` (default ``./smlocal-output``) and the artifacts are uploaded too.
    """
    body = object_field(body, "", _TOP_LEVEL)
    notes = [f"{key} is AWS-only and ignored locally" for key in body if _TOP_LEVEL[key] == "ignore"]
    algo = _algorithm_spec(body)
    channels, channel_notes = _channels(body, algo.input_mode, base)
    output_path, s3_output_path = _output(body, output_path, local_output, base)
    count, instance_type, max_runtime = _resources(body)
    hps = string_map_field(body.get("HyperParameters", {}), "HyperParameters")
    env = string_map_field(body.get("Environment", {}), "Environment", _ENV_KEY)
    algorithm = algo.algorithm
    if algorithm is None and env.get("SMLOCAL_ALGORITHM"):
        algorithm = choice_field(env["SMLOCAL_ALGORITHM"], "Environment.SMLOCAL_ALGORITHM", NAMES)
    source_dir = script_source(hps, base)
    if algo.image is None and algorithm is None and not is_script_mode(hps, env):
        raise field_error("AlgorithmSpecification.TrainingImage",
                          "give an image, a built-in algorithm image URI (.../kmeans:1), AlgorithmName, "
                          "or a script (HyperParameters.sagemaker_program).")
    job_name = body.get("TrainingJobName")
    if job_name is None:
        job_name = default_job_name(algorithm or (algo.image or "job").rsplit("/", 1)[-1].split(":")[0])
    return JobSpec(
        job_name=validate_job_name(job_name, "TrainingJobName"), output_path=output_path, channels=channels,
        hyperparameters=hps, image=algo.image, algorithm=algorithm, input_mode=algo.input_mode,
        instance_count=count, instance_type=instance_type, max_runtime=max_runtime, environment=env,
        entrypoint=algo.entrypoint, source_dir=source_dir, notes=tuple(notes + algo.notes + channel_notes),
        s3_output_path=s3_output_path,
    )
