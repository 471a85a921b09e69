"""S3 URIs, listings and manifests, and S3 errors as customer errors, against a real S3 API: moto's
server on 127.0.0.1, through boto3 (unpatched)."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from smlocal.errors import CustomerError, PlatformError
from smlocal.runtime.plan import shard_objects
from smlocal.runtime.s3.errors import translate_error
from smlocal.runtime.s3.objects import (S3Object, check_bucket, head_object, list_channel_objects,
                                        open_object_stream, parse_manifest, upload_job_outputs)
from smlocal.runtime.s3.uri import is_s3_uri, join_s3, parse_s3_uri, prefix_relpath, safe_relpath
from tests.functional.conftest_s3 import download_objects, put, read_stream
from tests.helpers import REPO
from tests.s3server import start_moto_server

pytest_plugins = ["tests.functional.conftest_s3"]  # fixtures: moto_server, s3_env, bucket


# ---------------------------------------------------------------------------------------- pure parts
def test_parse_s3_uri():
    assert parse_s3_uri("s3://bkt/a/b/") == ("bkt", "a/b/")
    assert parse_s3_uri("s3://bkt") == ("bkt", "")
    assert parse_s3_uri("S3://bkt/k") == ("bkt", "k")
    assert is_s3_uri("s3://x/y") and not is_s3_uri("/data/s3://x") and not is_s3_uri(None)
    for bad in ("s3://", "s3:///key", "/local/path", "https://bkt/k"):
        with pytest.raises(CustomerError):
            parse_s3_uri(bad)
    assert join_s3("s3://bkt/out/", "job-1", "output", "model.tar.gz") == "s3://bkt/out/job-1/output/model.tar.gz"
    assert join_s3("s3://bkt", "job", "output") == "s3://bkt/job/output"


def test_prefix_relpath_follows_the_sdk_and_keeps_partial_matches_readable():
    assert prefix_relpath("data/train", "data/train/a/x.csv") == "a/x.csv"
    assert prefix_relpath("data/train/", "data/train/x.csv") == "x.csv"
    assert prefix_relpath("data/train/x.csv", "data/train/x.csv") == "x.csv"
    assert prefix_relpath("data/tr", "data/train/x.csv") == "train/x.csv"
    assert prefix_relpath("", "x.csv") == "x.csv"
    with pytest.raises(CustomerError, match=r"'\.\.'"):
        safe_relpath("../../etc/passwd", "s3://bkt/../../etc/passwd")
    assert safe_relpath("a//./b", "x") == "a/b"


def test_parse_manifest_errors_say_what_is_expected():
    assert parse_manifest(b'[{"prefix": "s3://b1x/p/"}, "a", "b/c"]', "m") == ("s3://b1x/p/", ["a", "b/c"])
    cases = [(b"not json", "not valid JSON"), (b'{"prefix": "s3://b1x/"}', "must be a JSON list"),
             (b'[{"prefix": "/local/"}, "a"]', "must be a JSON list"), (b'[{"prefix": "s3://b1x/"}]', "lists no objects"),
             (b'[{"prefix": "s3://b1x/"}, "a", 3]', "element 2")]
    for data, message in cases:
        with pytest.raises(CustomerError, match=message) as info:
            parse_manifest(data, "s3://m/.amazon.manifest")
        assert "s3://m/.amazon.manifest" in str(info.value)


def _client_error(code: str, status: int, operation: str = "GetObject"):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": f"{code} message"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


def test_translate_error_maps_real_botocore_exceptions():
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError

    uri = "s3://bkt/data/x.csv"
    expectations = [
        (_client_error("AccessDenied", 403), CustomerError, ["access denied", "'bkt'", "s3:GetObject",
                                                           "arn:aws:s3:::bkt/data/x.csv"]),
        (_client_error("403", 403, "HeadObject"), CustomerError, ["access denied", "s3:GetObject"]),
        (_client_error("NoSuchBucket", 404, "ListObjectsV2"), CustomerError, ["bucket 'bkt' does not exist"]),
        (_client_error("404", 404, "HeadObject"), CustomerError, ["object 'data/x.csv' does not exist"]),
        (_client_error("404", 404, "HeadBucket"), CustomerError, ["bucket 'bkt' does not exist"]),
        (_client_error("InvalidAccessKeyId", 403), CustomerError, ["rejected the AWS credentials"]),
        (_client_error("PermanentRedirect", 301), CustomerError, ["another region"]),
        (_client_error("PreconditionFailed", 412), CustomerError, ["changed"]),
        (_client_error("SlowDown", 503), PlatformError, ["Retry later"]),
        (NoCredentialsError(), CustomerError, ["no AWS credentials"]),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), CustomerError,
         ["cannot connect", "--s3-endpoint-url"]),
    ]
    for exc, kind, fragments in expectations:
        mapped = translate_error(exc, uri, "read")
        assert type(mapped) is kind, (exc, mapped)
        assert str(mapped).startswith(f"Cannot read {uri}: ")
        for fragment in fragments:
            assert fragment in str(mapped), (fragment, str(mapped))
    assert translate_error(ValueError("x"), uri) is None


def test_importing_the_s3_modules_does_not_import_boto3():
    code = ("import sys, smlocal.runtime.s3.uri, smlocal.runtime.s3.errors, smlocal.runtime.s3.client, "
            "smlocal.runtime.s3.objects, smlocal.runtime.s3.cache; "
            "print('boto3' in sys.modules, 'botocore' in sys.modules, 'rich' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == ["False", "False", "False"]


# ------------------------------------------------------------------------------------------ listing
def test_prefix_listing_in_key_order_with_sizes_etags_and_relative_paths(s3_env, bucket):
    client = s3_env.client()
    etags = {key: put(client, bucket, key, body) for key, body in [
        ("data/train/part-1.csv", b"1,2\n"), ("data/train/part-0.csv", b"0,1\n0,2\n"),
        ("data/train/sub/part-2.csv", b"2,2\n"), ("data/train/", b""), ("data/train2/other.csv", b"9\n"),
        ("data/test/t.csv", b"5\n")]}
    objects = list_channel_objects(f"s3://{bucket}/data/train/")
    assert [o.key for o in objects] == ["data/train/part-0.csv", "data/train/part-1.csv", "data/train/sub/part-2.csv"]
    assert [o.relpath for o in objects] == ["part-0.csv", "part-1.csv", "sub/part-2.csv"]
    assert [o.size for o in objects] == [8, 4, 4]
    assert all(o.etag == etags[o.key] and o.bucket == bucket for o in objects)
    # a prefix is a key-name prefix, as on SageMaker: "data/train" also matches "data/train2/..."
    loose = list_channel_objects(f"s3://{bucket}/data/train", channel="train")
    assert [o.relpath for o in loose] == ["part-0.csv", "part-1.csv", "sub/part-2.csv", "train2/other.csv"]
    single = list_channel_objects(f"s3://{bucket}/data/test/t.csv")
    assert [(o.key, o.relpath) for o in single] == [("data/test/t.csv", "t.csv")]


def _sdk_record_set(bucket_name: str, prefix: str, rows: int = 40, shards: int = 2):
    """Upload shards exactly as the SDK's record_set() does, with the SDK's own function."""
    import boto3
    from sagemaker.amazon.amazon_estimator import upload_numpy_to_s3_shards

    rng = np.random.default_rng(7)
    features = rng.normal(size=(rows, 3)).astype("float32")
    labels = rng.integers(0, 2, size=rows).astype("float32")
    manifest = upload_numpy_to_s3_shards(shards, boto3.resource("s3"), bucket_name, prefix, features, labels)
    return manifest, features, labels


def test_manifest_listing_reads_the_sdk_record_set_manifest(s3_env, bucket):
    manifest_uri, features, _ = _sdk_record_set(bucket, "kmeans/train")
    assert manifest_uri == f"s3://{bucket}/kmeans/train/.amazon.manifest"
    raw = s3_env.client().get_object(Bucket=bucket, Key="kmeans/train/.amazon.manifest")["Body"].read()
    assert json.loads(raw) == [{"prefix": f"s3://{bucket}/kmeans/train/"}, "matrix_0.pbr", "matrix_1.pbr"]

    objects = list_channel_objects(manifest_uri, "ManifestFile", channel="train")
    assert [o.key for o in objects] == ["kmeans/train/matrix_0.pbr", "kmeans/train/matrix_1.pbr"]
    assert [o.relpath for o in objects] == ["matrix_0.pbr", "matrix_1.pbr"]
    assert all(o.size > 0 and o.etag for o in objects)
    # the URI of the folder that holds .amazon.manifest works too (with or without the slash)
    for uri in (f"s3://{bucket}/kmeans/train/", f"s3://{bucket}/kmeans/train"):
        assert list_channel_objects(uri, "ManifestFile") == objects

    # the streamed shards are the SDK's records, host by host under ShardedByS3Key
    from sagemaker.amazon.common import read_records

    rows = []
    for host in range(2):
        (mine,) = shard_objects(objects, host, 2, "ShardedByS3Key")
        assert mine.relpath == f"matrix_{host}.pbr"
        data = read_stream(mine, chunk=1000)
        rows += [list(r.features["values"].float32_tensor.values) for r in read_records(io.BytesIO(data))]
    np.testing.assert_array_equal(np.array(rows, dtype="float32"), features)


def test_manifest_written_by_hand_can_point_at_another_prefix(s3_env, bucket):
    client = s3_env.client()
    put(client, bucket, "shards/a/one.csv", b"1\n")
    put(client, bucket, "shards/b/two.csv", b"2\n")
    put(client, bucket, "manifests/train.json",
        json.dumps([{"prefix": f"s3://{bucket}/shards/"}, "b/two.csv", "a/one.csv"]).encode())
    objects = list_channel_objects(f"s3://{bucket}/manifests/train.json", "ManifestFile")
    assert [(o.key, o.relpath) for o in objects] == [("shards/b/two.csv", "b/two.csv"),
                                                     ("shards/a/one.csv", "a/one.csv")]  # manifest order


def test_manifest_errors_name_the_missing_objects(s3_env, bucket):
    client = s3_env.client()
    put(client, bucket, "p/matrix_0.pbr", b"x")
    put(client, bucket, "p/.amazon.manifest",
        json.dumps([{"prefix": f"s3://{bucket}/p/"}, "matrix_0.pbr", "matrix_1.pbr"]).encode())
    with pytest.raises(CustomerError) as info:
        list_channel_objects(f"s3://{bucket}/p/.amazon.manifest", "ManifestFile", channel="train")
    assert f"s3://{bucket}/p/matrix_1.pbr" in str(info.value) and "channel 'train'" in str(info.value)
    assert "matrix_0" not in str(info.value).split("do not exist:")[1]

    with pytest.raises(CustomerError, match="does not exist.*S3Prefix"):
        list_channel_objects(f"s3://{bucket}/nothing-here", "ManifestFile")
    put(client, bucket, "q/.amazon.manifest", json.dumps([{"prefix": "s3://no-such-bucket-smlocal/q/"}, "a"]).encode())
    with pytest.raises(CustomerError, match="bucket 'no-such-bucket-smlocal' does not exist"):
        list_channel_objects(f"s3://{bucket}/q/", "ManifestFile")
    with pytest.raises(CustomerError, match="AugmentedManifestFile"):
        list_channel_objects(f"s3://{bucket}/q/", "AugmentedManifestFile")


# ------------------------------------------------------------------------------------------- errors
def test_no_such_bucket_is_reported_before_anything_runs(s3_env, tmp_path):
    for data_type in ("S3Prefix", "ManifestFile"):
        with pytest.raises(CustomerError) as info:
            list_channel_objects("s3://smlocal-no-such-bucket/train/", data_type, channel="train")
        assert "bucket 'smlocal-no-such-bucket' does not exist" in str(info.value)
    with pytest.raises(CustomerError, match="bucket 'smlocal-no-such-bucket' does not exist"):
        check_bucket("s3://smlocal-no-such-bucket/out/")
    model = tmp_path / "output" / "model.tar.gz"
    model.parent.mkdir()
    model.write_bytes(b"m")
    with pytest.raises(CustomerError, match="Cannot upload to s3://smlocal-no-such-bucket/.*does not exist"):
        upload_job_outputs(model.parent, "s3://smlocal-no-such-bucket/out", "job")


def test_empty_prefix_names_bucket_and_prefix(s3_env, bucket):
    put(s3_env.client(), bucket, "data/other/x.csv", b"1\n")
    with pytest.raises(CustomerError) as info:
        list_channel_objects(f"s3://{bucket}/data/train/", channel="train")
    message = str(info.value)
    assert "channel 'train'" in message and "no objects" in message
    assert "'data/train/'" in message and f"'{bucket}'" in message


def test_no_credentials(moto_server, monkeypatch, tmp_path):
    for name, value in moto_server.environ(tmp_path / "aws", credentials=False).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    with pytest.raises(CustomerError) as info:
        list_channel_objects("s3://some-bucket/train/", channel="train")
    assert "no AWS credentials were found" in str(info.value) and "s3://some-bucket/train/" in str(info.value)
    with pytest.raises(CustomerError, match="no AWS credentials"):
        head_object("s3://some-bucket/model.tar.gz")


def test_access_denied_from_a_server_enforcing_iam(monkeypatch, tmp_path):
    """A dedicated moto server with IAM enforcement on: a user without any policy gets AccessDenied."""
    server = start_moto_server(log_dir=tmp_path)
    try:
        admin = server.client()
        admin.create_bucket(Bucket="locked-bucket")
        put(admin, "locked-bucket", "train/x.csv", b"1\n")
        iam = server.client("iam")
        iam.create_user(UserName="no-permissions")
        key = iam.create_access_key(UserName="no-permissions")["AccessKey"]
        for name, value in server.environ(tmp_path / "aws").items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        server.set_auth(True)

        with pytest.raises(CustomerError) as info:
            list_channel_objects("s3://locked-bucket/train/", channel="train")
        message = str(info.value)
        assert "access denied" in message and "'locked-bucket'" in message and "s3:ListBucket" in message
        obj = S3Object("locked-bucket", "train/x.csv", 2, "")
        with pytest.raises(CustomerError, match="Cannot read s3://locked-bucket/train/x.csv: access denied"):
            open_object_stream(obj)
        with pytest.raises(CustomerError, match="Cannot download s3://locked-bucket/train/x.csv: access denied"):
            download_objects([obj], tmp_path / "d", tmp_path / "cache")
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "model.tar.gz").write_bytes(b"m")
        with pytest.raises(CustomerError, match="access denied.*s3:PutObject"):
            upload_job_outputs(tmp_path / "out", "s3://locked-bucket/out", "job")

        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "not-a-known-key")
        with pytest.raises(CustomerError, match="rejected the AWS credentials \\(InvalidAccessKeyId"):
            list_channel_objects("s3://locked-bucket/train/")
    finally:
        server.stop()
