"""Job spec: CreateTrainingJob bodies and CLI flags -> JobSpec; bad fields named in the error."""
from __future__ import annotations

import copy

import pytest

from smlocal.errors import CustomerError
from smlocal.runtime.jobflags import spec_from_flags
from smlocal.runtime.jobspec import algorithm_from_image, default_job_name, parse_job
from smlocal.runtime.s3.client import LazyClient
from smlocal.runtime.sources import resolve_channels


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "train"
    d.mkdir()
    for i in range(3):
        (d / f"part-{i}.csv").write_text(f"{i},1\n")
    (d / ".hidden").write_text("x")
    return d


def body(data, **changes):
    b = {
        "TrainingJobName": "km-1",
        "AlgorithmSpecification": {"TrainingImage": "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1",
                                   "TrainingInputMode": "Pipe"},
        "RoleArn": "arn:aws:iam::1:role/x",
        "HyperParameters": {"k": "3", "feature_dim": "2"},
        "InputDataConfig": [{
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"file://{data}",
                                            "S3DataDistributionType": "ShardedByS3Key"}},
            "ContentType": "text/csv;label_size=0", "CompressionType": "Gzip",
            "RecordWrapperType": "RecordIO", "ShuffleConfig": {"Seed": 7},
        }],
        "OutputDataConfig": {"S3OutputPath": str(data.parent / "out")},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "Environment": {"OMP_NUM_THREADS": "1"},
    }
    b.update(changes)
    return b


def test_full_request_body(data):
    spec = parse_job(body(data))
    assert spec.job_name == "km-1"
    assert spec.algorithm == "kmeans" and spec.image is None  # the AWS built-in image maps to ours
    assert spec.input_mode == "Pipe" and spec.instance_count == 2 and spec.max_runtime == 60
    assert spec.hosts == ("algo-1", "algo-2")
    (ch,) = spec.channels
    assert (ch.name, ch.source, ch.input_mode, ch.distribution) == ("train", str(data), "Pipe", "ShardedByS3Key")
    assert (ch.compression, ch.record_wrapper, ch.shuffle_seed) == ("Gzip", "RecordIO", 7)
    assert ch.content_type == "text/csv;label_size=0"
    assert spec.output_path == str(data.parent / "out")
    assert spec.job_dir == data.parent / "out" / "km-1"
    assert "RoleArn is AWS-only and ignored locally" in spec.notes
    assert spec.environment == {"OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("mutate, path", [
    (lambda b: b.update(Bogus=1), "Bogus"),
    (lambda b: b["AlgorithmSpecification"].update(Foo="x"), "AlgorithmSpecification.Foo"),
    (lambda b: b["InputDataConfig"][0].update(Mode="Pipe"), "InputDataConfig[0].Mode"),
    (lambda b: b["InputDataConfig"][0]["DataSource"]["S3DataSource"].update(S3DataDistributionType="Random"),
     "InputDataConfig[0].DataSource.S3DataSource.S3DataDistributionType"),
    (lambda b: b["InputDataConfig"][0].update(CompressionType="Zip"), "InputDataConfig[0].CompressionType"),
    (lambda b: b["InputDataConfig"][0].update(ShuffleConfig={"Seed": "x"}), "InputDataConfig[0].ShuffleConfig.Seed"),
    (lambda b: b["InputDataConfig"][0]["DataSource"]["S3DataSource"].update(S3Uri="/nonexistent/xyz"),
     "InputDataConfig[0].DataSource.S3DataSource.S3Uri"),
    (lambda b: b["InputDataConfig"][0]["DataSource"]["S3DataSource"].update(S3Uri="s3:///x"),  # no bucket name
     "InputDataConfig[0].DataSource.S3DataSource.S3Uri"),
    (lambda b: b["ResourceConfig"].update(InstanceCount=0), "ResourceConfig.InstanceCount"),
    (lambda b: b["StoppingCondition"].update(MaxRuntimeInSeconds="soon"), "StoppingCondition.MaxRuntimeInSeconds"),
    (lambda b: b["HyperParameters"].update(k=[3]), "HyperParameters.k"),
    (lambda b: b.update(TrainingJobName="bad name!"), "TrainingJobName"),
    (lambda b: b["AlgorithmSpecification"].update(TrainingInputMode="Stream"),
     "AlgorithmSpecification.TrainingInputMode"),
    (lambda b: b["Environment"].update({"1BAD": "x"}), "Environment.1BAD"),
    (lambda b: b["InputDataConfig"].append(copy.deepcopy(b["InputDataConfig"][0])), "InputDataConfig"),
])
def test_invalid_fields_are_named(data, mutate, path):
    b = body(data)
    mutate(b)
    with pytest.raises(CustomerError) as info:
        parse_job(b)
    assert path in str(info.value)


def test_too_few_files_for_the_hosts_are_named_when_the_job_lists_its_channels(data):
    b = body(data)
    b["ResourceConfig"].update(InstanceCount=5)  # 5 hosts, 3 files
    spec = parse_job(b)  # the spec reads no channel: sources lists them, once, for the job
    with pytest.raises(CustomerError) as info:
        resolve_channels(spec, LazyClient())
    assert "InputDataConfig[0].DataSource.S3DataSource.S3DataDistributionType" in str(info.value)


def test_relative_paths_and_defaults(data, tmp_path):
    b = {"AlgorithmSpecification": {"AlgorithmName": "linear-learner"},
         "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "train"}}}],
         "OutputDataConfig": {"S3OutputPath": "out"}}
    spec = parse_job(b, base=tmp_path)
    assert spec.channels[0].source == str(data)
    assert spec.channels[0].input_mode == "File" and spec.channels[0].distribution == "FullyReplicated"
    assert spec.output_path == str(tmp_path / "out")
    assert spec.algorithm == "linear-learner" and spec.job_name.startswith("linear-learner-")
    # --output wins over OutputDataConfig
    assert parse_job(b, base=tmp_path, output_path="/elsewhere").output_path == "/elsewhere"


def test_numbers_in_hyperparameters_become_strings(data):
    spec = parse_job(body(data, HyperParameters={"k": 3, "init_method": "random", "flag": True}))
    assert spec.hyperparameters == {"k": "3", "init_method": "random", "flag": "true"}


def test_image_without_algorithm(data):
    spec = parse_job(body(data, AlgorithmSpecification={"TrainingImage": "smlocal:test"}))
    assert spec.image == "smlocal:test" and spec.algorithm is None
    assert algorithm_from_image("123.dkr.ecr.eu-west-1.amazonaws.com/linear-learner:1") == "linear-learner"
    assert algorithm_from_image("myrepo/kmeans:1") is None  # only AWS registries name a built-in


def test_flags(data, tmp_path):
    spec = spec_from_flags(
        algorithm="kmeans", image=None, channels=[f"train={data}", f"test={data / 'part-0.csv'}"],
        content_types=["train=text/csv;label_size=0"], distributions=["train=ShardedByS3Key"],
        compressions=[], record_wrappers=[], shuffle_seeds=["train=3"], hyperparameters=["k=3", "feature_dim=1"],
        input_mode="Pipe", output=str(tmp_path / "o"), instance_count=2, job_name="j1", max_runtime=30,
    )
    train, test = spec.channels
    assert train.content_type == "text/csv;label_size=0" and train.distribution == "ShardedByS3Key"
    assert train.shuffle_seed == 3 and train.is_pipe
    assert test.source == str(data / "part-0.csv")
    assert spec.hyperparameters == {"k": "3", "feature_dim": "1"}
    assert (spec.job_name, spec.max_runtime, spec.instance_count) == ("j1", 30, 2)
    with pytest.raises(CustomerError, match="--hp"):
        spec_from_flags(algorithm="kmeans", image=None, channels=[], hyperparameters=["k"], output=str(tmp_path))
    with pytest.raises(CustomerError, match="'nope'"):
        spec_from_flags(algorithm="kmeans", image=None, channels=[f"train={data}"], content_types=["nope=text/csv"],
                        output=str(tmp_path))


def test_default_job_name_is_valid():
    import datetime as dt

    name = default_job_name("linear-learner", dt.datetime(2024, 1, 2, 3, 4, 5, 678000))
    assert name == "linear-learner-2024-01-02-03-04-05-678"


def test_pipe_only_fields_in_file_mode_are_noted(data):
    b = body(data)
    b["InputDataConfig"][0]["InputMode"] = "File"
    spec = parse_job(b)
    assert not any("CompressionType" in n for n in spec.notes)  # File mode decompresses gzip files too
    assert any("RecordWrapperType=RecordIO applies to Pipe mode only" in n for n in spec.notes)


@pytest.mark.parametrize("image", [
    "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1",
    "390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/kmeans:1",  # China
    "490574956308.dkr.ecr.us-iso-east-1.c2s.ic.gov/kmeans:1",  # ISO
    "765400339828.dkr.ecr.us-isob-east-1.sc2s.sgov.gov/kmeans@sha256:abc",  # ISO-B, by digest
    "108575199400.dkr.ecr-fips.us-isof-east-1.csp.hci.ic.gov/kmeans:latest",
])
def test_builtin_image_uris_of_every_partition_run_our_algorithm(data, image):
    spec = parse_job(body(data, AlgorithmSpecification={"TrainingImage": image}))
    assert (spec.image, spec.algorithm) == (None, "kmeans")


def test_other_images_in_aws_registries_run_as_they_are(data):
    assert algorithm_from_image("123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-kmeans:1") is None
    assert algorithm_from_image("dkr.ecr.eu-west-1.amazonaws.com/kmeans:1") is None  # no account
    spec = parse_job(body(data, AlgorithmSpecification={"TrainingImage": "quay.io/me/kmeans:1"}))
    assert spec.image == "quay.io/me/kmeans:1" and spec.algorithm is None


def test_an_s3_script_source_is_kept_for_the_runtime_to_fetch(data):
    hps = {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": '"s3://Code/job/sourcedir.tar.gz"'}
    spec = parse_job(body(data, HyperParameters=hps))
    assert spec.source_dir == "s3://Code/job/sourcedir.tar.gz"
    with pytest.raises(CustomerError, match="sagemaker_submit_directory.*not a .tar.gz"):
        parse_job(body(data, HyperParameters={**hps, "sagemaker_submit_directory": '"s3://code/job/"'}))
