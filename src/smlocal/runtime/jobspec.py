"""The training job spec: a CreateTrainingJob request body (or CLI flags) validated into a frozen JobSpec.

Field names and rules follow the SageMaker API so a request written for SageMaker runs here unchanged.
Every error is a ``CustomerError`` naming the field path (``InputDataConfig[0].DataSource...``).
Fields that only make sense on AWS (RoleArn, Tags, VpcConfig, ...) are accepted and reported as
ignored (``JobSpec.notes``).
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from smlocal.errors import CustomerError
from smlocal.scriptmode.toolkit_env import decode_value, program_name
from smlocal.runtime.s3 import DATA_TYPES, MANIFEST_NAME, is_s3_uri, parse_s3_uri

ALGORITHMS = ("kmeans", "linear-learner")
INPUT_MODES = ("File", "Pipe", "FastFile")
DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
COMPRESSIONS = ("None", "Gzip")
RECORD_WRAPPERS = ("None", "RecordIO")

DEFAULT_LOCAL_OUTPUT = "smlocal-output"  # local job files when the output is s3:// (relative to the cwd)
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")
_ENV_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,511}$")
# AWS built-in images: <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>; repo -> our algorithm
_BUILTIN_REPOS = {"kmeans": "kmeans", "linear-learner": "linear-learner"}

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
        return is_s3_uri(self.source)


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


def algorithm_from_image(image: str | None) -> str | None:
    """The algorithm an AWS built-in image URI names (``.../kmeans:1`` -> ``kmeans``), else None."""
    if not image or ".amazonaws.com/" not in image:
        return None
    repo = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    return _BUILTIN_REPOS.get(repo)


# ----------------------------------------------------------------------------------------- helpers
def _err(path: str, message: str) -> CustomerError:
    return CustomerError(f"Invalid training job field {path}: {message}")


def _obj(value: Any, path: str, allowed: set[str] | dict) -> dict:
    if not isinstance(value, Mapping):
        raise _err(path, f"must be a JSON object, not {type(value).__name__}.")
    for key in value:
        if key not in allowed:
            raise _err(f"{path}.{key}" if path else str(key),
                       f"unknown field. Accepted fields here: {', '.join(sorted(allowed))}.")
    return dict(value)


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise _err(path, "must be a non-empty string.")
    return value


def _int(value: Any, path: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _err(path, f"must be an integer >= {minimum}, got {value!r}.")
    try:
        number = int(value)
    except ValueError:
        raise _err(path, f"must be an integer >= {minimum}, got {value!r}.") from None
    if number < minimum:
        raise _err(path, f"must be an integer >= {minimum}, got {number}.")
    return number


def _choice(value: Any, path: str, choices: tuple[str, ...]) -> str:
    for choice in choices:  # the API is case-sensitive; we accept any case and normalise
        if isinstance(value, str) and value.lower() == choice.lower():
            return choice
    raise _err(path, f"{value!r} is not one of: {', '.join(choices)}.")


def _string_map(value: Any, path: str, key_pattern: re.Pattern | None = None) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _err(path, f"must be a JSON object of strings, not {type(value).__name__}.")
    out: dict[str, str] = {}
    for key, val in value.items():
        if key_pattern is not None and not key_pattern.match(str(key)):
            raise _err(f"{path}.{key}", "is not a valid name (letters, digits and '_', not starting with a digit).")
        if isinstance(val, bool):  # JSON true/false written by hand: SageMaker wants strings
            val = "true" if val else "false"
        elif isinstance(val, (int, float)):
            val = str(val)
        elif not isinstance(val, str):
            raise _err(f"{path}.{key}", f"must be a string, got {type(val).__name__} ({val!r}).")
        out[str(key)] = val
    return out


def local_path(uri: str, path: str, base: Path | None = None) -> str:
    """A channel/output URI as an absolute local path: a plain path or ``file://`` URI."""
    if is_s3_uri(uri):
        raise _err(path, f"{uri!r} is an S3 URI; a local path or file:// URI is needed here.")
    if "://" in uri and not uri.startswith("file://"):
        raise _err(path, f"{uri!r}: only local paths and file:// URIs are supported.")
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    p = Path(uri).expanduser()
    if not p.is_absolute():
        p = (base or Path.cwd()) / p
    return str(p.resolve())


def s3_location(uri: str, path: str) -> str:
    """An ``s3://bucket/key`` URI checked for a bucket name, with the scheme in lower case."""
    try:
        bucket, key = parse_s3_uri(uri)
    except CustomerError as exc:
        raise _err(path, str(exc)) from None
    return f"s3://{bucket}/{key}"


def output_location(uri: str, path: str, base: Path | None = None) -> str:
    """An output (S3OutputPath, --output): an ``s3://`` URI as it is, else an absolute local path."""
    return s3_location(uri, path) if is_s3_uri(uri) else local_path(uri, path, base)


# ------------------------------------------------------------------------------------------ parsing
def _parse_channel(entry: Any, path: str, job_mode: str, base: Path | None) -> ChannelSpec:
    entry = _obj(entry, path, _CHANNEL)
    name = _str(entry.get("ChannelName"), f"{path}.ChannelName")
    if not _CHANNEL_NAME.match(name):
        raise _err(f"{path}.ChannelName", f"{name!r} must be 1-64 letters, digits, '.', '-' or '_'.")
    if "DataSource" not in entry:
        raise _err(f"{path}.DataSource", "is required (DataSource.S3DataSource.S3Uri = a local path).")
    source = _obj(entry["DataSource"], f"{path}.DataSource", _DATA_SOURCE)
    if "FileSystemDataSource" in source:
        raise _err(f"{path}.DataSource.FileSystemDataSource",
                   "EFS/FSx sources are not supported locally; use S3DataSource with a local path.")
    s3 = _obj(source.get("S3DataSource"), f"{path}.DataSource.S3DataSource", _S3_SOURCE)
    spath = f"{path}.DataSource.S3DataSource"
    data_type = _choice(s3.get("S3DataType", "S3Prefix"), f"{spath}.S3DataType", DATA_TYPES)
    if "AttributeNames" in s3:
        raise _err(f"{spath}.AttributeNames", "augmented manifests are not supported locally.")
    uri = _str(s3.get("S3Uri"), f"{spath}.S3Uri")
    if is_s3_uri(uri):  # listed (and checked) from S3 when the job runs, before any container starts
        location = s3_location(uri, f"{spath}.S3Uri")
    else:
        if data_type != "S3Prefix":
            raise _err(f"{spath}.S3DataType", f"{data_type} needs an s3:// S3Uri (a manifest in S3); for a "
                                              "local directory or file use S3Prefix.")
        location = local_path(uri, f"{spath}.S3Uri", base)
        if not Path(location).exists():
            raise _err(f"{spath}.S3Uri", f"{location} does not exist. Give the directory or file holding "
                                         f"the '{name}' channel's data.")
    mode = _choice(entry.get("InputMode", job_mode), f"{path}.InputMode", INPUT_MODES)
    seed = None
    if "ShuffleConfig" in entry:
        shuffle = _obj(entry["ShuffleConfig"], f"{path}.ShuffleConfig", {"Seed"})
        seed = _int(shuffle.get("Seed"), f"{path}.ShuffleConfig.Seed", minimum=0)
    content_type = entry.get("ContentType")
    if content_type is not None:
        content_type = _str(content_type, f"{path}.ContentType")
    return ChannelSpec(
        name=name,
        source=location,
        content_type=content_type,
        input_mode="File" if mode == "FastFile" else mode,  # FastFile streams on demand: File here
        distribution=_choice(s3.get("S3DataDistributionType", "FullyReplicated"),
                             f"{spath}.S3DataDistributionType", DISTRIBUTIONS),
        compression=_choice(entry.get("CompressionType", "None"), f"{path}.CompressionType", COMPRESSIONS),
        record_wrapper=_choice(entry.get("RecordWrapperType", "None"), f"{path}.RecordWrapperType",
                               RECORD_WRAPPERS),
        shuffle_seed=seed,
        data_type=data_type,
    )


def is_script_mode(hyperparameters: Mapping[str, str], environment: Mapping[str, str]) -> bool:
    """A user script is named (the SDK's sagemaker_program hyperparameter or SAGEMAKER_PROGRAM)."""
    return program_name(hyperparameters, environment) is not None


def script_source(hyperparameters: Mapping[str, str], base: Path | None = None) -> str | None:
    """The local code location named by ``sagemaker_submit_directory`` (JSON-encoded, as the SDK sends it)."""
    raw = hyperparameters.get("sagemaker_submit_directory")
    if raw is None:
        return None
    location = decode_value(raw)
    path = "HyperParameters.sagemaker_submit_directory"
    if not isinstance(location, str) or location.startswith("s3://"):
        raise _err(path, f"{raw!r}: give a local directory or .tar.gz (S3 code locations are not fetched).")
    source = local_path(location, path, base)
    if not Path(source).exists():
        raise _err(path, f"{source} does not exist.")
    if not (Path(source).is_dir() or Path(source).name.endswith((".tar.gz", ".tgz", ".tar"))):
        raise _err(path, f"{source} is neither a directory nor a .tar.gz archive.")
    return source


def parse_job(body: Any, base: Path | None = None, output_path: str | None = None,
              local_output: str | None = None) -> JobSpec:
    """Validate a CreateTrainingJob request body. ``base``: directory relative paths are taken from.

    ``output_path`` (e.g. the CLI's ``--output``) overrides ``OutputDataConfig.S3OutputPath``. When the
    output is an ``s3://`` URI, the job's local files (record, logs, artifact copies) go below
    ``local_output`` (default ``./smlocal-output``) and the artifacts are uploaded too.
    """
    body = _obj(body, "", _TOP_LEVEL)
    notes = [f"{key} is AWS-only and ignored locally" for key in body if _TOP_LEVEL[key] == "ignore"]

    if "AlgorithmSpecification" not in body:
        raise _err("AlgorithmSpecification", "is required (TrainingImage or AlgorithmName, TrainingInputMode).")
    algo = _obj(body["AlgorithmSpecification"], "AlgorithmSpecification", _ALGO_SPEC)
    image = algo.get("TrainingImage")
    if image is not None:
        image = _str(image, "AlgorithmSpecification.TrainingImage")
    algorithm = algorithm_from_image(image)
    if algorithm is not None:
        image = None  # an AWS built-in image cannot be pulled: smlocal's own container stands in
    if "AlgorithmName" in algo:
        name = _str(algo["AlgorithmName"], "AlgorithmSpecification.AlgorithmName").lower()
        name = name.rsplit("/", 1)[-1].replace("_", "-")
        if name not in ALGORITHMS:
            raise _err("AlgorithmSpecification.AlgorithmName",
                       f"{algo['AlgorithmName']!r} is not available locally; use one of: {', '.join(ALGORITHMS)}.")
        algorithm = name
    job_mode = _choice(algo.get("TrainingInputMode", "File"), "AlgorithmSpecification.TrainingInputMode",
                       INPUT_MODES)
    job_mode = "File" if job_mode == "FastFile" else job_mode
    entrypoint = None
    if "ContainerEntrypoint" in algo or "ContainerArguments" in algo:
        parts = []
        for key in ("ContainerEntrypoint", "ContainerArguments"):
            value = algo.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _err(f"AlgorithmSpecification.{key}", "must be a list of strings.")
            parts.extend(value)
        entrypoint = tuple(parts)
    notes += [f"AlgorithmSpecification.{k} is AWS-only and ignored locally" for k in algo
              if k in ("MetricDefinitions", "EnableSageMakerMetricsTimeSeries", "TrainingImageConfig")]

    channels_raw = body.get("InputDataConfig", [])
    if not isinstance(channels_raw, list):
        raise _err("InputDataConfig", "must be a list of channels.")
    channels = tuple(_parse_channel(c, f"InputDataConfig[{i}]", job_mode, base)
                     for i, c in enumerate(channels_raw))
    for i, ch in enumerate(channels):
        if not ch.is_pipe and ch.compression != "None":
            notes.append(f"InputDataConfig[{i}].CompressionType={ch.compression} applies to Pipe mode only; "
                         f"in File mode channel '{ch.name}' gets its files as they are")
        if not ch.is_pipe and ch.record_wrapper != "None":
            notes.append(f"InputDataConfig[{i}].RecordWrapperType={ch.record_wrapper} applies to Pipe mode only; "
                         f"in File mode channel '{ch.name}' gets its files as they are")
    names = [c.name for c in channels]
    for name in names:
        if names.count(name) > 1:
            raise _err("InputDataConfig", f"channel name {name!r} is used more than once.")

    if output_path is None:
        out = _obj(body.get("OutputDataConfig"), "OutputDataConfig", _OUTPUT) \
            if "OutputDataConfig" in body else {}
        if "S3OutputPath" not in out:
            raise _err("OutputDataConfig.S3OutputPath", "is required (a local directory or s3:// URI), or "
                                                        "pass --output.")
        output_path = output_location(_str(out["S3OutputPath"], "OutputDataConfig.S3OutputPath"),
                                      "OutputDataConfig.S3OutputPath", base)
    else:
        output_path = output_location(output_path, "--output")
        if "OutputDataConfig" in body:
            _obj(body["OutputDataConfig"], "OutputDataConfig", _OUTPUT)
    s3_output_path = None
    if is_s3_uri(output_path):
        s3_output_path = output_path
        output_path = local_path(local_output or DEFAULT_LOCAL_OUTPUT, "--local-output")

    resources = _obj(body.get("ResourceConfig", {}), "ResourceConfig", _RESOURCE)
    if "InstanceGroups" in resources:
        raise _err("ResourceConfig.InstanceGroups", "heterogeneous clusters are not supported locally; "
                                                    "use InstanceCount.")
    count = _int(resources.get("InstanceCount", 1), "ResourceConfig.InstanceCount")
    instance_type = resources.get("InstanceType", "local")
    instance_type = _str(instance_type, "ResourceConfig.InstanceType")

    stopping = _obj(body.get("StoppingCondition", {}), "StoppingCondition", _STOPPING)
    max_runtime = None
    if "MaxRuntimeInSeconds" in stopping:
        max_runtime = _int(stopping["MaxRuntimeInSeconds"], "StoppingCondition.MaxRuntimeInSeconds")

    hps = _string_map(body.get("HyperParameters", {}), "HyperParameters")
    env = _string_map(body.get("Environment", {}), "Environment", _ENV_KEY)
    if algorithm is None and env.get("SMLOCAL_ALGORITHM"):
        algorithm = _choice(env["SMLOCAL_ALGORITHM"], "Environment.SMLOCAL_ALGORITHM", ALGORITHMS)
    source_dir = script_source(hps, base)
    if image is None and algorithm is None and not is_script_mode(hps, env):
        raise _err("AlgorithmSpecification.TrainingImage",
                   "give an image, a built-in algorithm image URI (.../kmeans:1), AlgorithmName, "
                   "or a script (HyperParameters.sagemaker_program).")

    job_name = body.get("TrainingJobName")
    if job_name is None:
        job_name = default_job_name(algorithm or (image or "job").rsplit("/", 1)[-1].split(":")[0])
    job_name = validate_job_name(job_name, "TrainingJobName")

    spec = JobSpec(
        job_name=job_name, output_path=output_path, channels=channels, hyperparameters=hps, image=image,
        algorithm=algorithm, input_mode=job_mode, instance_count=count, instance_type=instance_type,
        max_runtime=max_runtime, environment=env, entrypoint=entrypoint, source_dir=source_dir,
        notes=tuple(notes), s3_output_path=s3_output_path,
    )
    validate(spec)
    return spec


def validate_job_name(name: Any, path: str = "TrainingJobName") -> str:
    name = _str(name, path)
    if not _JOB_NAME.match(name):
        raise _err(path, f"{name!r} must be 1-63 letters, digits or '-', starting with a letter or digit.")
    return name


def validate(spec: JobSpec) -> None:
    """Cross-field rules that hold however the spec was built (JSON or flags). S3 channels are
    checked the same way when they are listed, before any container starts (``sources``)."""
    for i, ch in enumerate(spec.channels):
        if ch.is_s3:
            continue
        count = len(list_channel_files(ch.source))
        if count == 0:
            raise _err(f"InputDataConfig[{i}].DataSource.S3DataSource.S3Uri",
                       f"channel '{ch.name}' has no data files in {ch.source} (hidden files are ignored).")
        if ch.distribution == "ShardedByS3Key" and spec.instance_count > 1:
            if count < spec.instance_count:
                raise _err(f"InputDataConfig[{i}].DataSource.S3DataSource.S3DataDistributionType",
                           f"ShardedByS3Key over {spec.instance_count} hosts needs at least that many files; "
                           f"channel '{ch.name}' has {count}. Split the data into more files or use "
                           "FullyReplicated.")


def list_channel_files(source: str) -> list[tuple[str, str]]:
    """(key, absolute path) of every data file of a channel, sorted by key like an S3 listing.

    A file source is a single object; a directory source is every file below it. Hidden files and
    directories (``.name``) are skipped, as editors and OSes leave them behind.
    """
    from smlocal.data.channels import data_files  # the container's own rule, so both sides agree

    root = Path(source)
    if root.is_file():
        return [(root.name, str(root))]
    return [(path.relative_to(root).as_posix(), str(path)) for path in data_files(root)]


# --------------------------------------------------------------------------------------- from flags
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


def split_pair(value: str, flag: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise CustomerError(f"{flag} {value!r}: expected NAME=VALUE.")
    return key.strip(), val


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
    A channel may be an ``s3://`` URI; one naming an SDK ``.amazon.manifest`` is a ManifestFile channel
    unless ``--data-type`` says otherwise.
    """
    if source_dir and not entry_point:
        raise CustomerError("smlocal train: --source-dir needs --entry-point (the script to run in it).")
    if not algorithm and not image and not entry_point:
        raise CustomerError("smlocal train: give --job job.json, --algorithm kmeans|linear-learner, --image, "
                            "or --entry-point script.py [--source-dir DIR].")
    per_channel: dict[str, dict[str, str]] = {}
    for flag, items, key in (("--content-type", content_types, "ContentType"),
                             ("--distribution", distributions, "S3DataDistributionType"),
                             ("--compression", compressions, "CompressionType"),
                             ("--record-wrapper", record_wrappers, "RecordWrapperType"),
                             ("--shuffle-seed", shuffle_seeds, "Seed"),
                             ("--data-type", data_types, "S3DataType")):
        for item in items:
            name, val = split_pair(item, flag)
            per_channel.setdefault(name, {})[key] = val
    known = set()
    data_config = []
    for item in channels:
        name, path = split_pair(item, "--channel")
        known.add(name)
        extra = per_channel.get(name, {})
        manifest = is_s3_uri(path) and path.rstrip("/").rsplit("/", 1)[-1] == MANIFEST_NAME
        s3 = {"S3DataType": extra.get("S3DataType", "ManifestFile" if manifest else "S3Prefix"), "S3Uri": path,
              "S3DataDistributionType": extra.get("S3DataDistributionType", "FullyReplicated")}
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
    algo_spec: dict[str, Any] = {"TrainingInputMode": input_mode}
    if image:
        algo_spec["TrainingImage"] = image
    if algorithm:
        algo_spec["AlgorithmName"] = algorithm
    body: dict[str, Any] = {
        "AlgorithmSpecification": algo_spec,
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
