"""S3 channels and outputs end to end: the real CLI / runtime (process backend, real k-means) against a
real S3 API, moto's server on 127.0.0.1 (tests/s3server.py), reached through boto3 unpatched.

Downloads are counted on the server side, from its request log (one ``GET /bucket/key`` per GetObject).
SDK-written data comes from the real ``sagemaker`` SDK (``upload_numpy_to_s3_shards``, what
``record_set()`` calls).
"""
from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from smlocal.artifacts.loader import load_model_dir
from smlocal.runtime.endpoint import invoke
from smlocal.runtime.jobs import run_training
from smlocal.runtime.jobflags import spec_from_flags
from smlocal.runtime.process import ProcessBackend
from smlocal.runtime.progress import Display
from smlocal.runtime.records import read_record
from smlocal.runtime.s3.client import LazyClient
from tests.datasets import blobs
from tests.helpers import (assert_found_centers, needs_mxnet, records_read_in_epoch0, run_cli, run_job,
                           smlocal_serve, training_job)
from tests.s3server import start_moto_server

pytest_plugins = ["tests.functional.conftest_s3"]  # fixtures: moto_server, s3_env, bucket

CENTERS = np.array([[0, 0, 0, 0], [8, 8, 0, 0], [0, 8, 8, -8]], dtype=np.float32)
ROWS = (40, 60, 80, 100)  # rows per CSV object: shards are told apart by their sizes
KMEANS = ["--algorithm", "kmeans", "--backend", "process", "--hp", "k=3", "--hp", "feature_dim=4",
          "--hp", "mini_batch_size=50"]
CSV = ["--content-type", "train=text/csv;label_size=0"]


def _csv(rows: np.ndarray) -> bytes:
    return "".join(",".join(f"{v:.5f}" for v in row) + "\n" for row in rows).encode()


def _gets(server, bucket_name: str, key_prefix: str) -> int:
    """GetObject requests the server received for keys under ``key_prefix`` (its werkzeug request log)."""
    return server.log_path.read_text().count(f'"GET /{bucket_name}/{key_prefix}')


def _keys(server, bucket_name: str, prefix: str = "") -> list[str]:
    listing = server.client().list_objects_v2(Bucket=bucket_name, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", ()))


def _s3_model_centers(server, bucket_name: str, key: str, tmp_path: Path) -> np.ndarray:
    body = server.client().get_object(Bucket=bucket_name, Key=key)["Body"].read()
    out = tmp_path / "extracted"
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.getnames() == ["model_algo-1"]
        tar.extractall(out)
    return load_model_dir(out).centers


@pytest.fixture
def csv_channel(s3_env, bucket) -> str:
    """Four CSV objects under s3://<bucket>/data/train/ (plus a decoy under data/other/)."""
    client = s3_env.client()
    for i, n in enumerate(ROWS):
        client.put_object(Bucket=bucket, Key=f"data/train/part-{i}.csv", Body=_csv(blobs(CENTERS, n, seed=i, std=0.3)))
    client.put_object(Bucket=bucket, Key="data/other/not-training-data.csv", Body=b"x\n")
    return f"s3://{bucket}/data/train"


def _sdk_record_set(bucket_name: str, prefix: str, rows: int = 91) -> tuple[str, np.ndarray]:
    """Two shards and .amazon.manifest, written by the SDK's own record_set() helper: 45 + 46 rows."""
    import boto3
    from sagemaker.amazon.amazon_estimator import upload_numpy_to_s3_shards

    features = blobs(CENTERS, rows, seed=11, std=0.3)
    manifest = upload_numpy_to_s3_shards(2, boto3.resource("s3"), bucket_name, prefix, features)
    return manifest, features


# --------------------------------------------------------------------------------------------- File
def test_file_mode_from_an_s3_prefix_uploads_outputs_and_reuses_the_cache(s3_env, bucket, csv_channel, tmp_path):
    local = tmp_path / "local"
    cache = Path(os.environ["SMLOCAL_S3_CACHE"])
    common = [*KMEANS, *CSV, "--channel", f"train={csv_channel}", "--output", f"s3://{bucket}/jobs",
              "--local-output", str(local)]
    cli = run_cli("train", *common, "--job-name", "km-1")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert f"ModelArtifacts: s3://{bucket}/jobs/km-1/output/model.tar.gz" in cli.stdout
    assert "channel 'train': 4 S3 object(s), 4 downloaded" in cli.stdout
    assert _gets(s3_env, bucket, "data/train/") == 4 and _gets(s3_env, bucket, "data/other/") == 0
    assert _keys(s3_env, bucket, "jobs/") == ["jobs/km-1/output/model.tar.gz", "jobs/km-1/output/output.tar.gz"]
    assert_found_centers(_s3_model_centers(s3_env, bucket, "jobs/km-1/output/model.tar.gz", tmp_path), CENTERS, 1.0)
    record = read_record(local / "km-1")
    assert record["OutputDataConfig"] == {"S3OutputPath": f"s3://{bucket}/jobs"}
    assert record["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == csv_channel
    assert record["OutputArtifacts"] == f"s3://{bucket}/jobs/km-1/output/output.tar.gz"
    assert Path(record["LocalArtifacts"]["model"]).is_file()
    cached = sorted(cache.glob("objects/*.json"))
    assert len(cached) == 4
    stamps = [json.loads(p.read_text())["downloaded"] for p in cached]

    # a second job over the same channel downloads nothing: every object comes from the cache
    cli = run_cli("train", *common, "--job-name", "km-2", "--keep-work")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "channel 'train': 4 S3 object(s), 0 downloaded (0 B), 4 reused from the cache" in cli.stdout
    assert _gets(s3_env, bucket, "data/train/") == 4
    assert [json.loads(p.read_text())["downloaded"] for p in cached] == stamps
    # the host's channel directory holds real files: hard links to the cached bytes, not copies
    channel_dir = local / "km-2" / "hosts" / "algo-1" / "input" / "data" / "train"
    assert sorted(p.name for p in channel_dir.iterdir()) == [f"part-{i}.csv" for i in range(4)]
    part = channel_dir / "part-2.csv"
    assert not part.is_symlink() and part.read_bytes() == _csv(blobs(CENTERS, ROWS[2], seed=2, std=0.3))
    assert any(os.path.samefile(part, p.with_suffix("")) for p in cached)


def test_a_bad_object_in_an_s3_file_channel_is_named_by_its_uri(s3_env, bucket, csv_channel, tmp_path):
    """The container reads a hard link into the download cache; the failure names the object's URI."""
    s3_env.client().put_object(Bucket=bucket, Key="data/train/part-1.csv", Body=b"1,2,3,4\n1,2,x,4\n")
    local = tmp_path / "local"
    cli = run_cli("train", *KMEANS, *CSV, "--channel", f"train={csv_channel}", "--output", f"s3://{bucket}/jobs",
                  "--local-output", str(local), "--job-name", "bad-object")
    assert cli.returncode == 2, cli.stdout + cli.stderr
    reason = read_record(local / "bad-object")["FailureReason"]
    for text in (reason, cli.stderr):
        assert f"file '{csv_channel}/part-1.csv' line 2, column 3" in text, text
        assert "/objects/" not in text and "/hosts/algo-1/" not in text, text


@needs_mxnet
def test_file_mode_sdk_manifest_sharded_across_two_hosts(s3_env, bucket, tmp_path):
    manifest, _ = _sdk_record_set(bucket, "kmeans/train")
    assert manifest.endswith("/.amazon.manifest")
    out = tmp_path / "out"
    cli = run_cli("train", *KMEANS, "--channel", f"train={manifest}",  # .amazon.manifest: ManifestFile
                  "--content-type", "train=application/x-recordio-protobuf", "--distribution", "train=ShardedByS3Key",
                  "--instance-count", "2", "--output", str(out), "--job-name", "sharded-file", "--keep-work")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    record = read_record(out / "sharded-file")
    assert record["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataType"] == "ManifestFile"
    assert record["HostExitCodes"] == {"algo-1": 0, "algo-2": 0}
    hosts = out / "sharded-file" / "hosts"
    for index, host in enumerate(("algo-1", "algo-2")):
        assert sorted(p.name for p in (hosts / host / "input" / "data" / "train").iterdir()) == [f"matrix_{index}.pbr"]
    logs = out / "sharded-file" / "logs"
    assert (records_read_in_epoch0(logs / "algo-1.log"), records_read_in_epoch0(logs / "algo-2.log")) == (45, 46)
    assert _gets(s3_env, bucket, "kmeans/train/matrix_") == 2
    with tarfile.open(out / "sharded-file" / "output" / "model.tar.gz") as tar:
        assert "model_algo-1" in tar.getnames()


# --------------------------------------------------------------------------------------------- Pipe
@needs_mxnet
def test_pipe_mode_streams_the_sdk_manifest_sharded_from_a_job_json(s3_env, bucket, tmp_path, monkeypatch):
    manifest, _ = _sdk_record_set(bucket, "kmeans/pipe")
    job = tmp_path / "job.json"
    job.write_text(json.dumps({
        "TrainingJobName": "pipe-manifest",
        "AlgorithmSpecification": {"TrainingImage": "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1",
                                   "TrainingInputMode": "Pipe"},
        "HyperParameters": {"k": "3", "feature_dim": "4", "mini_batch_size": "20"},
        "InputDataConfig": [{"ChannelName": "train", "ContentType": "application/x-recordio-protobuf",
                             "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": manifest,
                                                             "S3DataDistributionType": "ShardedByS3Key"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/jobs/"},
        "ResourceConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1},
    }))
    # the endpoint comes from the flag alone
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    local = tmp_path / "local"
    cli = run_cli("train", "--job", str(job), "--backend", "process", "--local-output", str(local),
                  "--s3-endpoint-url", s3_env.endpoint_url)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    logs = local / "pipe-manifest" / "logs"
    assert (records_read_in_epoch0(logs / "algo-1.log"), records_read_in_epoch0(logs / "algo-2.log")) == (45, 46)
    assert _gets(s3_env, bucket, "kmeans/pipe/matrix_0.pbr") >= 1 and _gets(s3_env, bucket, "kmeans/pipe/matrix_1") >= 1
    # streamed, never written to disk: nothing in the download cache, no shard file anywhere locally
    assert not list(Path(os.environ["SMLOCAL_S3_CACHE"]).glob("objects/*"))
    assert not [p for p in local.rglob("matrix_*")]
    assert _keys(s3_env, bucket, "jobs/") == ["jobs/pipe-manifest/output/model.tar.gz",
                                              "jobs/pipe-manifest/output/output.tar.gz"]


def test_pipe_mode_gzip_and_recordio_wrapping_from_an_s3_prefix(s3_env, bucket, tmp_path):
    """Each object is one gzipped, unframed Record: gunzipped, then wrapped as one RecordIO record."""
    from sagemaker.amazon.record_pb2 import Record

    client = s3_env.client()
    for i, row in enumerate(blobs(CENTERS, 60, seed=5, std=0.3)):
        record = Record()
        record.features["values"].float32_tensor.values.extend(row.tolist())
        client.put_object(Bucket=bucket, Key=f"raw/row-{i:03d}.pb.gz", Body=gzip.compress(record.SerializeToString()))
    out = tmp_path / "out"
    cli = run_cli("train", *KMEANS, "--channel", f"train=s3://{bucket}/raw/", "--input-mode", "Pipe",
                  "--content-type", "train=application/x-recordio-protobuf", "--compression", "train=Gzip",
                  "--record-wrapper", "train=RecordIO", "--output", str(out), "--job-name", "wrapped")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert records_read_in_epoch0(out / "wrapped" / "logs" / "algo-1.log") == 60
    with tarfile.open(out / "wrapped" / "output" / "model.tar.gz") as tar:
        tar.extractall(tmp_path / "model")
    assert_found_centers(load_model_dir(tmp_path / "model").centers, CENTERS, 1.0)
    assert not list(Path(os.environ["SMLOCAL_S3_CACHE"]).glob("objects/*"))


# ------------------------------------------------------------------------------------ serve, transform
def test_serve_and_transform_with_s3_model_input_and_output(s3_env, bucket, csv_channel, tmp_path):
    # a model in S3, trained in-process from local data: the command's client is made for the output only
    data = tmp_path / "train.csv"
    data.write_bytes(_csv(blobs(CENTERS, 150, seed=3, std=0.3)))
    spec = spec_from_flags(algorithm="kmeans", image=None, channels=[f"train={data}"],
                           content_types=["train=text/csv;label_size=0"],
                           hyperparameters=["k=3", "feature_dim=4", "mini_batch_size=50"],
                           output=f"s3://{bucket}/models", local_output=str(tmp_path / "local"), job_name="m")
    client = LazyClient()
    result = run_training(spec, ProcessBackend(), Display(live=False, stream=io.StringIO()), s3_client=client)
    assert result.status == "Completed", result.failure_reason
    assert client.created
    model_uri = f"s3://{bucket}/models/m/output/model.tar.gz"
    assert result.record["ModelArtifacts"]["S3ModelArtifacts"] == model_uri
    centers = _s3_model_centers(s3_env, bucket, "models/m/output/model.tar.gz", tmp_path)
    model_gets = _gets(s3_env, bucket, "models/m/output/model.tar.gz")

    with smlocal_serve(model_uri) as port:
        answer = invoke(port, b"0,0,0,0\n8,8,0,0\n", "text/csv", "application/json")
        assert answer.status == 200, answer.text()
        clusters = [p["closest_cluster"] for p in answer.json()["predictions"]]
        expected = np.linalg.norm(CENTERS[:2, None, :] - centers[None], axis=2).argmin(1)
        assert clusters == [float(c) for c in expected]

    cli = run_cli("transform", "--model", model_uri, "--input", csv_channel, "--output", f"s3://{bucket}/scored/",
                  "--content-type", "text/csv", "--accept", "text/csv", "--split-type", "Line",
                  "--assemble-with", "Line", "--workers", "1", "--backend", "process")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert _keys(s3_env, bucket, "scored/") == [f"scored/part-{i}.csv.out" for i in range(4)]
    for i, n in enumerate(ROWS):
        body = s3_env.client().get_object(Bucket=bucket, Key=f"scored/part-{i}.csv.out")["Body"].read().decode()
        rows = np.loadtxt(io.StringIO(_csv(blobs(CENTERS, n, seed=i, std=0.3)).decode()), delimiter=",",
                          dtype=np.float32)
        nearest = np.linalg.norm(rows[:, None, :] - centers[None], axis=2).argmin(1)
        assert [float(line.split(",")[0]) for line in body.splitlines()] == [float(c) for c in nearest]
    # one download for serve; transform reused the cached copy
    assert _gets(s3_env, bucket, "models/m/output/model.tar.gz") == model_gets + 1


def test_a_local_job_never_makes_an_s3_client(tmp_path):
    data = tmp_path / "train.csv"
    data.write_bytes(_csv(blobs(CENTERS, 90, seed=4, std=0.3)))
    spec = spec_from_flags(algorithm="kmeans", image=None, channels=[f"train={data}"],
                           content_types=["train=text/csv;label_size=0"],
                           hyperparameters=["k=3", "feature_dim=4"], output=str(tmp_path / "out"), job_name="loc")
    client = LazyClient()
    result = run_training(spec, ProcessBackend(), Display(live=False, stream=io.StringIO()), s3_client=client)
    assert result.status == "Completed", result.failure_reason
    assert not client.created


# ------------------------------------------------------------------------------------------- errors
def _assert_failed_before_start(cli, local: Path, job_name: str, *needles: str) -> None:
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert cli.stderr.startswith("smlocal: Customer Error:"), cli.stderr
    for needle in needles:
        assert needle in cli.stderr, cli.stderr
    assert "training job" not in cli.stdout  # the runtime never announced a start
    assert not (local / job_name).exists()  # no record, no /opt/ml tree for any host


@pytest.mark.parametrize("case", ["no-such-input-bucket", "empty-prefix", "missing-manifest",
                                  "no-such-output-bucket", "too-few-objects-to-shard"])
def test_s3_errors_name_bucket_key_and_cause_before_any_container_starts(s3_env, bucket, csv_channel, tmp_path,
                                                                         case):
    local = tmp_path / "local"
    channel, extra, needles = csv_channel, [], []
    if case == "no-such-input-bucket":
        channel = "s3://smlocal-no-such-bucket/train/"
        needles = ["channel 'train'", "s3://smlocal-no-such-bucket/train/", "bucket 'smlocal-no-such-bucket' does "
                   "not exist"]
    elif case == "empty-prefix":
        channel = f"s3://{bucket}/data/nothing-here/"
        needles = ["channel 'train'", "no objects found under the prefix 'data/nothing-here/'", f"'{bucket}'"]
    elif case == "missing-manifest":
        extra = ["--data-type", "train=ManifestFile"]
        needles = [f"s3://{bucket}/data/train/.amazon.manifest", "does not exist"]
    elif case == "no-such-output-bucket":
        extra = ["--output", "s3://smlocal-no-such-output/jobs"]
        needles = ["(S3OutputPath s3://smlocal-no-such-output/jobs)", "bucket 'smlocal-no-such-output' does not exist"]
    else:
        extra = ["--distribution", "train=ShardedByS3Key", "--instance-count", "5"]
        needles = ["ShardedByS3Key over 5 hosts needs at least 5 objects", csv_channel, "has 4"]
    if "--output" not in extra:
        extra += ["--output", f"s3://{bucket}/jobs"]
    cli = run_cli("train", *KMEANS, *CSV, "--channel", f"train={channel}", *extra, "--local-output", str(local),
                  "--job-name", "bad")
    _assert_failed_before_start(cli, local, "bad", *needles)
    assert _keys(s3_env, bucket, "jobs/") == []


def test_no_credentials_is_reported_before_any_container_starts(moto_server, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({k: v for k, v in moto_server.environ(tmp_path / "aws", credentials=False).items() if v is not None})
    local = tmp_path / "local"
    cli = run_cli("train", *KMEANS, *CSV, "--channel", "train=s3://some-bucket/train/", "--local-output", str(local),
                  "--output", "s3://some-bucket/jobs", "--job-name", "nocreds", env=env)
    _assert_failed_before_start(cli, local, "nocreds", "s3://some-bucket/", "no AWS credentials were found")


def test_access_denied_is_reported_before_any_container_starts(tmp_path):
    """A dedicated moto server enforcing IAM: a user without any policy gets AccessDenied."""
    server = start_moto_server(log_dir=tmp_path)
    try:
        admin = server.client()
        admin.create_bucket(Bucket="locked-bucket")
        admin.put_object(Bucket="locked-bucket", Key="train/x.csv", Body=b"1,2,3,4\n")
        iam = server.client("iam")
        iam.create_user(UserName="no-permissions")
        key = iam.create_access_key(UserName="no-permissions")["AccessKey"]
        server.set_auth(True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({k: v for k, v in server.environ(tmp_path / "aws").items() if v is not None})
        env.update({"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
                    "SMLOCAL_S3_CACHE": str(tmp_path / "cache")})
        local = tmp_path / "local"
        cli = run_cli("train", *KMEANS, *CSV, "--channel", "train=s3://locked-bucket/train/", "--output",
                      str(tmp_path / "out"), "--job-name", "denied", env=env)
        _assert_failed_before_start(cli, tmp_path / "out", "denied", "channel 'train'", "access denied",
                                    "'locked-bucket'", "s3:ListBucket")
        cli = run_cli("train", *KMEANS, *CSV, "--channel", f"train={tmp_path}", "--output", "s3://locked-bucket/out",
                      "--local-output", str(local), "--job-name", "denied-out", env=env)
        _assert_failed_before_start(cli, local, "denied-out", "s3://locked-bucket/", "access denied")
    finally:
        server.stop()


def test_serve_and_transform_name_a_missing_model_or_bucket_before_the_server_starts(s3_env, bucket, csv_channel,
                                                                                   tmp_path):
    cli = run_cli("serve", "--model", f"s3://{bucket}/models/missing/model.tar.gz", "--port", "0", "--backend",
                  "process")
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert f"the object 'models/missing/model.tar.gz' does not exist in bucket '{bucket}'" in cli.stderr
    assert "endpoint ready" not in cli.stdout
    cli = run_cli("serve", "--model", "s3://smlocal-no-such-bucket/model.tar.gz", "--backend", "process")
    assert cli.returncode == 2 and "bucket 'smlocal-no-such-bucket' does not exist" in cli.stderr, cli.stderr
    cli = run_cli("transform", "--model", f"s3://{bucket}/models/missing/model.tar.gz", "--input", csv_channel,
                  "--output", "s3://smlocal-no-such-output/scored/", "--backend", "process")
    assert cli.returncode == 2 and "bucket 'smlocal-no-such-output' does not exist" in cli.stderr, cli.stderr
    cli = run_cli("transform", "--model", f"s3://{bucket}/models/missing/model.tar.gz", "--input",
                  f"s3://{bucket}/no/such/prefix/", "--output", str(tmp_path / "scored"), "--backend", "process")
    assert cli.returncode == 2 and "no objects found under the prefix 'no/such/prefix/'" in cli.stderr, cli.stderr
    assert not (tmp_path / "scored").exists()


def test_an_s3_script_source_is_fetched_by_the_runtime_into_the_given_cache(s3_env, bucket, tmp_path):
    """The SDK's framework jobs name an s3:// sourcedir.tar.gz: the runtime fetches it (cache_dir given
    explicitly, as ``smlocal api`` does) and runs the script from it."""
    script = (b"import os\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'from-s3.txt'), 'w').write('ran')\n")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("train.py")
        info.size = len(script)
        tar.addfile(info, io.BytesIO(script))
    s3_env.client().put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=archive.getvalue())
    body = training_job("from-s3", [], tmp_path / "out", image="smlocal:latest", instance_type="local", hps={
        "sagemaker_program": json.dumps("train.py"),
        "sagemaker_submit_directory": json.dumps(f"s3://{bucket}/code/sourcedir.tar.gz")})
    cache = tmp_path / "given-cache"
    result = run_job(body, ProcessBackend(), s3_client=LazyClient(), cache_dir=cache)
    assert result.status == "Completed", result.failure_reason
    with tarfile.open(result.model_artifacts) as tar:
        assert tar.extractfile("from-s3.txt").read() == b"ran"
    assert len(list(cache.glob("objects/*.json"))) == 1
