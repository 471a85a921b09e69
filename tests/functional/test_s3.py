"""S3 channels and outputs against a real S3 API: moto's server on 127.0.0.1, through boto3 (unpatched)."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from smlocal.errors import CustomerError, PlatformError
from smlocal.runtime import s3
from smlocal.runtime.s3 import S3Object
from smlocal.runtime.s3_cache import LogProgress, RichProgress, cache_paths, fetch_to_cache, place
from tests.helpers import REPO
from tests.s3server import CuttingProxy, start_moto_server

pytest_plugins = ["tests.functional.conftest_s3"]  # fixtures: moto_server, s3_env, bucket


def put(client, bucket_name: str, key: str, body: bytes) -> str:
    return client.put_object(Bucket=bucket_name, Key=key, Body=body)["ETag"].strip('"')


def download_objects(objects, dest_dir, cache_dir, **kwargs) -> list:
    """What File mode does with a host's objects: through the cache, then placed at their relpath."""
    cached = fetch_to_cache(objects, cache_dir, **kwargs)
    return [place(source, dest_dir / obj.name) for obj, source in zip(objects, cached, strict=True)]


def read_stream(obj, client=None, chunk: int = 1 << 20) -> bytes:
    """An object's bytes as a Pipe feeder reads them: chunk by chunk from ``open_object_stream``."""
    with s3.open_object_stream(obj, client) as stream:
        return b"".join(iter(lambda: stream.read(chunk), b""))


def get_object_counter(client) -> list[str]:
    """Count GetObject calls made by ``client`` (a botocore event hook: observes, changes nothing)."""
    calls: list[str] = []
    client.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: calls.append(params["Key"]))
    return calls


# ---------------------------------------------------------------------------------------- pure parts
def test_parse_s3_uri():
    assert s3.parse_s3_uri("s3://bkt/a/b/") == ("bkt", "a/b/")
    assert s3.parse_s3_uri("s3://bkt") == ("bkt", "")
    assert s3.parse_s3_uri("S3://bkt/k") == ("bkt", "k")
    assert s3.is_s3_uri("s3://x/y") and not s3.is_s3_uri("/data/s3://x") and not s3.is_s3_uri(None)
    for bad in ("s3://", "s3:///key", "/local/path", "https://bkt/k"):
        with pytest.raises(CustomerError):
            s3.parse_s3_uri(bad)
    assert s3.join_s3("s3://bkt/out/", "job-1", "output", "model.tar.gz") == "s3://bkt/out/job-1/output/model.tar.gz"
    assert s3.join_s3("s3://bkt", "job", "output") == "s3://bkt/job/output"


def test_prefix_relpath_follows_the_sdk_and_keeps_partial_matches_readable():
    assert s3.prefix_relpath("data/train", "data/train/a/x.csv") == "a/x.csv"
    assert s3.prefix_relpath("data/train/", "data/train/x.csv") == "x.csv"
    assert s3.prefix_relpath("data/train/x.csv", "data/train/x.csv") == "x.csv"
    assert s3.prefix_relpath("data/tr", "data/train/x.csv") == "train/x.csv"
    assert s3.prefix_relpath("", "x.csv") == "x.csv"
    with pytest.raises(CustomerError, match=r"'\.\.'"):
        s3.safe_relpath("../../etc/passwd", "s3://bkt/../../etc/passwd")
    assert s3.safe_relpath("a//./b", "x") == "a/b"


def test_parse_manifest_errors_say_what_is_expected():
    assert s3.parse_manifest(b'[{"prefix": "s3://b1x/p/"}, "a", "b/c"]', "m") == ("s3://b1x/p/", ["a", "b/c"])
    cases = [(b"not json", "not valid JSON"), (b'{"prefix": "s3://b1x/"}', "must be a JSON list"),
             (b'[{"prefix": "/local/"}, "a"]', "must be a JSON list"), (b'[{"prefix": "s3://b1x/"}]', "lists no objects"),
             (b'[{"prefix": "s3://b1x/"}, "a", 3]', "element 2")]
    for data, message in cases:
        with pytest.raises(CustomerError, match=message) as info:
            s3.parse_manifest(data, "s3://m/.amazon.manifest")
        assert "s3://m/.amazon.manifest" in str(info.value)


def test_shard_objects_is_pure_round_robin_over_any_sequence():
    objects = [f"part-{i}" for i in range(5)]
    shards = [s3.shard_objects(objects, i, 2, "ShardedByS3Key") for i in range(2)]
    assert shards == [["part-0", "part-2", "part-4"], ["part-1", "part-3"]]
    assert sorted(shards[0] + shards[1]) == objects
    assert s3.shard_objects(objects, 1, 2, "ShardedByS3Key") == shards[1]  # deterministic
    assert s3.shard_objects(tuple(objects), 1, 3, "FullyReplicated") == objects
    with pytest.raises(CustomerError, match="at least 3 objects; channel 'train' has 2"):
        s3.shard_objects(objects[:2], 0, 3, "ShardedByS3Key", source="'train'")
    with pytest.raises(CustomerError, match="S3DataDistributionType"):
        s3.shard_objects(objects, 0, 1, "Sharded")
    with pytest.raises(ValueError):
        s3.shard_objects(objects, 2, 2, "FullyReplicated")


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
        mapped = s3.translate_error(exc, uri, "read")
        assert type(mapped) is kind, (exc, mapped)
        assert str(mapped).startswith(f"Cannot read {uri}: ")
        for fragment in fragments:
            assert fragment in str(mapped), (fragment, str(mapped))
    assert s3.translate_error(ValueError("x"), uri) is None


def test_importing_the_s3_modules_does_not_import_boto3():
    code = ("import sys, smlocal.runtime.s3, smlocal.runtime.s3_cache; "
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
    objects = s3.list_channel_objects(f"s3://{bucket}/data/train/")
    assert [o.key for o in objects] == ["data/train/part-0.csv", "data/train/part-1.csv", "data/train/sub/part-2.csv"]
    assert [o.relpath for o in objects] == ["part-0.csv", "part-1.csv", "sub/part-2.csv"]
    assert [o.size for o in objects] == [8, 4, 4]
    assert all(o.etag == etags[o.key] and o.bucket == bucket for o in objects)
    # a prefix is a key-name prefix, as on SageMaker: "data/train" also matches "data/train2/..."
    loose = s3.list_channel_objects(f"s3://{bucket}/data/train", channel="train")
    assert [o.relpath for o in loose] == ["part-0.csv", "part-1.csv", "sub/part-2.csv", "train2/other.csv"]
    single = s3.list_channel_objects(f"s3://{bucket}/data/test/t.csv")
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

    objects = s3.list_channel_objects(manifest_uri, "ManifestFile", channel="train")
    assert [o.key for o in objects] == ["kmeans/train/matrix_0.pbr", "kmeans/train/matrix_1.pbr"]
    assert [o.relpath for o in objects] == ["matrix_0.pbr", "matrix_1.pbr"]
    assert all(o.size > 0 and o.etag for o in objects)
    # the URI of the folder that holds .amazon.manifest works too (with or without the slash)
    for uri in (f"s3://{bucket}/kmeans/train/", f"s3://{bucket}/kmeans/train"):
        assert s3.list_channel_objects(uri, "ManifestFile") == objects

    # the streamed shards are the SDK's records, host by host under ShardedByS3Key
    from sagemaker.amazon.common import read_records

    rows = []
    for host in range(2):
        (mine,) = s3.shard_objects(objects, host, 2, "ShardedByS3Key")
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
    objects = s3.list_channel_objects(f"s3://{bucket}/manifests/train.json", "ManifestFile")
    assert [(o.key, o.relpath) for o in objects] == [("shards/b/two.csv", "b/two.csv"),
                                                     ("shards/a/one.csv", "a/one.csv")]  # manifest order


def test_manifest_errors_name_the_missing_objects(s3_env, bucket):
    client = s3_env.client()
    put(client, bucket, "p/matrix_0.pbr", b"x")
    put(client, bucket, "p/.amazon.manifest",
        json.dumps([{"prefix": f"s3://{bucket}/p/"}, "matrix_0.pbr", "matrix_1.pbr"]).encode())
    with pytest.raises(CustomerError) as info:
        s3.list_channel_objects(f"s3://{bucket}/p/.amazon.manifest", "ManifestFile", channel="train")
    assert f"s3://{bucket}/p/matrix_1.pbr" in str(info.value) and "channel 'train'" in str(info.value)
    assert "matrix_0" not in str(info.value).split("do not exist:")[1]

    with pytest.raises(CustomerError, match="does not exist.*S3Prefix"):
        s3.list_channel_objects(f"s3://{bucket}/nothing-here", "ManifestFile")
    put(client, bucket, "q/.amazon.manifest", json.dumps([{"prefix": "s3://no-such-bucket-smlocal/q/"}, "a"]).encode())
    with pytest.raises(CustomerError, match="bucket 'no-such-bucket-smlocal' does not exist"):
        s3.list_channel_objects(f"s3://{bucket}/q/", "ManifestFile")
    with pytest.raises(CustomerError, match="AugmentedManifestFile"):
        s3.list_channel_objects(f"s3://{bucket}/q/", "AugmentedManifestFile")


# ---------------------------------------------------------------------------------------- File mode
def _channel(client, bucket_name: str, count: int = 5, size: int = 50_000) -> dict[str, bytes]:
    rng = np.random.default_rng(3)
    bodies = {f"train/part-{i:02d}.bin": rng.bytes(size + i) for i in range(count)}
    bodies["train/nested/deep.bin"] = b"nested\n"
    for key, body in bodies.items():
        put(client, bucket_name, key, body)
    return bodies


def test_file_mode_downloads_once_then_reuses_the_cache(s3_env, bucket, tmp_path):
    bodies = _channel(s3_env.client(), bucket)
    cache = tmp_path / "cache"
    objects = s3.list_channel_objects(f"s3://{bucket}/train/")

    client = s3.make_client()
    calls = get_object_counter(client)
    events = []
    files = download_objects(objects, tmp_path / "run1" / "train", cache, max_workers=4,
                             progress=lambda event, obj, n: events.append((event, n)), client=client)
    assert sorted(calls) == sorted(bodies)  # each object fetched exactly once
    assert [f.relative_to(tmp_path / "run1" / "train").as_posix() for f in files] == [o.relpath for o in objects]
    for obj, path in zip(objects, files, strict=True):
        assert path.read_bytes() == bodies[obj.key]
    assert ("plan", sum(len(b) for b in bodies.values())) in events
    assert sum(n for e, n in events if e == "bytes") == sum(len(b) for b in bodies.values())

    # second run (fresh client, fresh destination): nothing is downloaded, files come from the cache
    client2 = s3.make_client()
    calls2 = get_object_counter(client2)
    events2 = []
    again = download_objects(s3.list_channel_objects(f"s3://{bucket}/train/"), tmp_path / "run2" / "train", cache,
                             progress=lambda event, obj, n: events2.append(event), client=client2)
    assert calls2 == []
    assert events2.count("cached") == len(bodies) and "bytes" not in events2
    for obj, path in zip(objects, again, strict=True):
        assert path.read_bytes() == bodies[obj.key]
        assert os.path.samefile(path, cache_paths(cache, obj)[0])  # hard-linked, no second copy
        assert not os.access(path, os.W_OK) or os.geteuid() == 0

    # an object changed in S3 (new ETag): only that one is downloaded again
    put(s3_env.client(), bucket, "train/part-01.bin", b"changed\n")
    client3 = s3.make_client()
    calls3 = get_object_counter(client3)
    third = download_objects(s3.list_channel_objects(f"s3://{bucket}/train/"), tmp_path / "run2" / "train",
                             cache, client=client3)
    assert calls3 == ["train/part-01.bin"]
    assert [p.read_bytes() for p in third if p.name == "part-01.bin"] == [b"changed\n"]


def test_sharded_file_mode_across_two_hosts(s3_env, bucket, tmp_path):
    bodies = _channel(s3_env.client(), bucket, count=4)
    objects = s3.list_channel_objects(f"s3://{bucket}/train")
    placed = {}
    for host in range(2):
        mine = s3.shard_objects(objects, host, 2, "ShardedByS3Key")
        root = tmp_path / f"algo-{host + 1}" / "input" / "data" / "train"
        download_objects(mine, root, tmp_path / "cache")
        placed[host] = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert placed[0] == ["nested/deep.bin", "part-01.bin", "part-03.bin"]
    assert placed[1] == ["part-00.bin", "part-02.bin"]
    assert len(placed[0]) + len(placed[1]) == len(bodies)


def test_file_mode_refuses_two_objects_at_the_same_path():
    from smlocal.runtime.jobspec import ChannelSpec
    from smlocal.runtime.sources import _one_per_path

    ch = ChannelSpec("train", "s3://bkt/m.json", data_type="ManifestFile")
    a = S3Object("bkt", "x/a.csv", 1, "e1", "a.csv")
    assert _one_per_path(ch, [a, a]) == [a]  # the same object listed twice is one file
    with pytest.raises(CustomerError, match="x/a.csv and s3://bkt/y/a.csv would both be written to "
                                            "input/data/train/a.csv"):
        _one_per_path(ch, [a, S3Object("bkt", "y/a.csv", 1, "e2", "a.csv")])


def test_progress_reporters(s3_env, bucket, tmp_path, caplog):
    _channel(s3_env.client(), bucket, count=2)
    objects = s3.list_channel_objects(f"s3://{bucket}/train/")
    with caplog.at_level(logging.INFO, logger="smlocal.runtime.s3_cache"):
        fetch_to_cache(objects, tmp_path / "cache", progress=LogProgress())
    lines = [r.getMessage() for r in caplog.records]
    assert sum("S3: downloaded s3://" in line for line in lines) == len(objects)
    assert any("3 object(s), 0 reused from the cache, 3 downloaded" in line for line in lines)

    from rich.console import Console

    out = io.StringIO()
    bar = RichProgress(console=Console(file=out, force_terminal=True, width=100))
    fetch_to_cache(objects, tmp_path / "cache2", progress=bar)
    bar.close()
    assert "S3" in out.getvalue() and "downloading" in out.getvalue()


def test_file_mode_download_survives_a_dropped_connection(s3_env, bucket, tmp_path):
    body = np.random.default_rng(5).bytes(3 << 20)
    put(s3_env.client(), bucket, "big/x.bin", body)
    (obj,) = s3.list_channel_objects(f"s3://{bucket}/big/")
    proxy = CuttingProxy(s3_env.endpoint_url, cut_after=1 << 20)
    try:
        (path,) = download_objects([obj], tmp_path / "dest", tmp_path / "cache",
                                   client=s3.make_client(proxy.endpoint_url))
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert path.read_bytes() == body


# ---------------------------------------------------------------------------------------- Pipe mode
def test_streaming_read_of_a_multi_mb_object_equals_its_bytes(s3_env, bucket):
    body = np.random.default_rng(11).bytes((6 << 20) + 123)
    put(s3_env.client(), bucket, "pipe/big.bin", body)
    (obj,) = s3.list_channel_objects(f"s3://{bucket}/pipe/")
    with s3.open_object_stream(obj) as stream:
        first = stream.read(10)
        rest = bytearray()
        while chunk := stream.read(777_777):
            rest += chunk
    assert first + bytes(rest) == body
    with s3.open_object_stream(obj.uri) as by_uri:  # a bare URI (no listing) works too
        assert hashlib.sha256(by_uri.read()).digest() == hashlib.sha256(body).digest()
    with s3.open_object_stream(obj) as early:  # a consumer may stop early
        assert early.read(5) == body[:5]


def test_streams_compose_with_gzip_like_local_files(s3_env, bucket, tmp_path):
    import gzip

    text = b"".join(b"%d,%d\n" % (i, i * i) for i in range(50_000))
    put(s3_env.client(), bucket, "gz/part-0.csv.gz", gzip.compress(text))
    (obj,) = s3.list_channel_objects(f"s3://{bucket}/gz/")
    with gzip.open(s3.open_object_stream(obj), "rb") as unzipped:  # what a Pipe feeder does for Gzip
        assert unzipped.read() == text


def test_streaming_resumes_after_a_dropped_connection(s3_env, bucket, caplog):
    body = np.random.default_rng(12).bytes(4 << 20)
    put(s3_env.client(), bucket, "pipe/drop.bin", body)
    (obj,) = s3.list_channel_objects(f"s3://{bucket}/pipe/drop.bin")
    proxy = CuttingProxy(s3_env.endpoint_url, cut_after=(1 << 20) + 5)
    try:
        with caplog.at_level(logging.WARNING, logger="smlocal.runtime.s3"):
            data = read_stream(obj, s3.make_client(proxy.endpoint_url))
    finally:
        proxy.close()
    assert proxy.cuts == 1 and data == body
    assert any("resuming" in r.getMessage() for r in caplog.records)


def test_an_object_changed_after_listing_is_refused(s3_env, bucket, tmp_path):
    put(s3_env.client(), bucket, "pipe/x.csv", b"1\n")
    (obj,) = s3.list_channel_objects(f"s3://{bucket}/pipe/")
    put(s3_env.client(), bucket, "pipe/x.csv", b"2\n")
    with pytest.raises(CustomerError, match=f"s3://{bucket}/pipe/x.csv.*changed"):
        s3.open_object_stream(obj)
    with pytest.raises(CustomerError, match="changed"):
        download_objects([obj], tmp_path / "d", tmp_path / "cache")


# ------------------------------------------------------------------------------------------ outputs
def test_outputs_land_at_the_sagemaker_keys_and_come_back(s3_env, bucket, tmp_path):
    out = tmp_path / "job" / "output"
    out.mkdir(parents=True)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model_algo-1").write_bytes(b"\x12\x01weights")
    with tarfile.open(out / "model.tar.gz", "w:gz") as tar:
        tar.add(model_dir / "model_algo-1", arcname="model_algo-1")
    (out / "output.tar.gz").write_bytes(b"not really a tar, just bytes")
    uris = s3.upload_job_outputs(out, f"s3://{bucket}/results/", "kmeans-2024-01-01-00-00-00-000")
    prefix = f"s3://{bucket}/results/kmeans-2024-01-01-00-00-00-000/output"
    assert uris == {"model.tar.gz": f"{prefix}/model.tar.gz", "output.tar.gz": f"{prefix}/output.tar.gz"}
    keys = sorted(o["Key"] for o in s3_env.client().list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["results/kmeans-2024-01-01-00-00-00-000/output/model.tar.gz",
                    "results/kmeans-2024-01-01-00-00-00-000/output/output.tar.gz"]

    # serve --model s3://.../model.tar.gz: one object, through the download cache
    model = s3.head_object(uris["model.tar.gz"])
    assert (model.name, model.size) == ("model.tar.gz", (out / "model.tar.gz").stat().st_size)
    (local,) = fetch_to_cache([model], tmp_path / "cache")
    assert local.read_bytes() == (out / "model.tar.gz").read_bytes()
    with tarfile.open(local) as tar:
        assert tar.getnames() == ["model_algo-1"]
    with pytest.raises(CustomerError, match=f"object 'results/missing.tar.gz' does not exist in bucket '{bucket}'"):
        s3.head_object(f"s3://{bucket}/results/missing.tar.gz")
    with pytest.raises(CustomerError, match="bucket 'smlocal-no-such-bucket' does not exist"):
        s3.head_object("s3://smlocal-no-such-bucket/model.tar.gz")
    with pytest.raises(CustomerError, match="names a prefix, not an object"):
        s3.head_object(f"s3://{bucket}/results/")

    # transform output directories (a large file goes up in parts)
    results = tmp_path / "transform-out"
    (results / "sub").mkdir(parents=True)
    (results / "a.csv.out").write_text("1\n")
    big = np.random.default_rng(1).bytes(9 << 20)  # above the multipart threshold
    (results / "sub" / "b.csv.out").write_bytes(big)
    written = s3.upload_directory(results, f"s3://{bucket}/transform/out")
    assert written == [f"s3://{bucket}/transform/out/a.csv.out", f"s3://{bucket}/transform/out/sub/b.csv.out"]
    got = s3_env.client().get_object(Bucket=bucket, Key="transform/out/sub/b.csv.out")["Body"].read()
    assert got == big


# ------------------------------------------------------------------------------------------- errors
def test_no_such_bucket_is_reported_before_anything_runs(s3_env, tmp_path):
    for data_type in ("S3Prefix", "ManifestFile"):
        with pytest.raises(CustomerError) as info:
            s3.list_channel_objects("s3://smlocal-no-such-bucket/train/", data_type, channel="train")
        assert "bucket 'smlocal-no-such-bucket' does not exist" in str(info.value)
    with pytest.raises(CustomerError, match="bucket 'smlocal-no-such-bucket' does not exist"):
        s3.check_bucket("s3://smlocal-no-such-bucket/out/")
    model = tmp_path / "output" / "model.tar.gz"
    model.parent.mkdir()
    model.write_bytes(b"m")
    with pytest.raises(CustomerError, match="Cannot upload to s3://smlocal-no-such-bucket/.*does not exist"):
        s3.upload_job_outputs(model.parent, "s3://smlocal-no-such-bucket/out", "job")


def test_empty_prefix_names_bucket_and_prefix(s3_env, bucket):
    put(s3_env.client(), bucket, "data/other/x.csv", b"1\n")
    with pytest.raises(CustomerError) as info:
        s3.list_channel_objects(f"s3://{bucket}/data/train/", channel="train")
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
        s3.list_channel_objects("s3://some-bucket/train/", channel="train")
    assert "no AWS credentials were found" in str(info.value) and "s3://some-bucket/train/" in str(info.value)
    with pytest.raises(CustomerError, match="no AWS credentials"):
        s3.head_object("s3://some-bucket/model.tar.gz")


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
            s3.list_channel_objects("s3://locked-bucket/train/", channel="train")
        message = str(info.value)
        assert "access denied" in message and "'locked-bucket'" in message and "s3:ListBucket" in message
        obj = S3Object("locked-bucket", "train/x.csv", 2, "")
        with pytest.raises(CustomerError, match="Cannot read s3://locked-bucket/train/x.csv: access denied"):
            s3.open_object_stream(obj)
        with pytest.raises(CustomerError, match="Cannot download s3://locked-bucket/train/x.csv: access denied"):
            download_objects([obj], tmp_path / "d", tmp_path / "cache")
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "model.tar.gz").write_bytes(b"m")
        with pytest.raises(CustomerError, match="access denied.*s3:PutObject"):
            s3.upload_job_outputs(tmp_path / "out", "s3://locked-bucket/out", "job")

        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "not-a-known-key")
        with pytest.raises(CustomerError, match="rejected the AWS credentials \\(InvalidAccessKeyId"):
            s3.list_channel_objects("s3://locked-bucket/train/")
    finally:
        server.stop()
