"""S3 data moved for a job against a real S3 API (moto's server on 127.0.0.1, boto3 unpatched): File-mode
downloads and the cache, Pipe-mode streams, and job outputs uploaded."""
from __future__ import annotations

import hashlib
import io
import logging
import os
import tarfile

import numpy as np
import pytest

from smlocal.errors import CustomerError
from smlocal.runtime.plan import shard_objects
from smlocal.runtime.s3.cache import LogProgress, RichProgress, cache_paths, fetch_to_cache
from smlocal.runtime.s3.client import make_client
from smlocal.runtime.s3.objects import (S3Object, head_object, list_channel_objects, open_object_stream,
                                        upload_directory, upload_job_outputs)
from tests.functional.conftest_s3 import download_objects, put, read_stream
from tests.s3server import CuttingProxy

pytest_plugins = ["tests.functional.conftest_s3"]  # fixtures: moto_server, s3_env, bucket


def get_object_counter(client) -> list[str]:
    """Count GetObject calls made by ``client`` (a botocore event hook: observes, changes nothing)."""
    calls: list[str] = []
    client.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: calls.append(params["Key"]))
    return calls


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
    objects = list_channel_objects(f"s3://{bucket}/train/")

    client = make_client()
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
    client2 = make_client()
    calls2 = get_object_counter(client2)
    events2 = []
    again = download_objects(list_channel_objects(f"s3://{bucket}/train/"), tmp_path / "run2" / "train", cache,
                             progress=lambda event, obj, n: events2.append(event), client=client2)
    assert calls2 == []
    assert events2.count("cached") == len(bodies) and "bytes" not in events2
    for obj, path in zip(objects, again, strict=True):
        assert path.read_bytes() == bodies[obj.key]
        assert os.path.samefile(path, cache_paths(cache, obj)[0])  # hard-linked, no second copy
        assert not os.access(path, os.W_OK) or os.geteuid() == 0

    # an object changed in S3 (new ETag): only that one is downloaded again
    put(s3_env.client(), bucket, "train/part-01.bin", b"changed\n")
    client3 = make_client()
    calls3 = get_object_counter(client3)
    third = download_objects(list_channel_objects(f"s3://{bucket}/train/"), tmp_path / "run2" / "train",
                             cache, client=client3)
    assert calls3 == ["train/part-01.bin"]
    assert [p.read_bytes() for p in third if p.name == "part-01.bin"] == [b"changed\n"]


def test_sharded_file_mode_across_two_hosts(s3_env, bucket, tmp_path):
    bodies = _channel(s3_env.client(), bucket, count=4)
    objects = list_channel_objects(f"s3://{bucket}/train")
    placed = {}
    for host in range(2):
        mine = shard_objects(objects, host, 2, "ShardedByS3Key")
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
    objects = list_channel_objects(f"s3://{bucket}/train/")
    with caplog.at_level(logging.INFO, logger="smlocal.runtime.s3.cache"):
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
    (obj,) = list_channel_objects(f"s3://{bucket}/big/")
    proxy = CuttingProxy(s3_env.endpoint_url, cut_after=1 << 20)
    try:
        (path,) = download_objects([obj], tmp_path / "dest", tmp_path / "cache",
                                   client=make_client(proxy.endpoint_url))
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert path.read_bytes() == body


# ---------------------------------------------------------------------------------------- Pipe mode
def test_streaming_read_of_a_multi_mb_object_equals_its_bytes(s3_env, bucket):
    body = np.random.default_rng(11).bytes((6 << 20) + 123)
    put(s3_env.client(), bucket, "pipe/big.bin", body)
    (obj,) = list_channel_objects(f"s3://{bucket}/pipe/")
    with open_object_stream(obj) as stream:
        first = stream.read(10)
        rest = bytearray()
        while chunk := stream.read(777_777):
            rest += chunk
    assert first + bytes(rest) == body
    with open_object_stream(obj.uri) as by_uri:  # a bare URI (no listing) works too
        assert hashlib.sha256(by_uri.read()).digest() == hashlib.sha256(body).digest()
    with open_object_stream(obj) as early:  # a consumer may stop early
        assert early.read(5) == body[:5]


def test_streams_compose_with_gzip_like_local_files(s3_env, bucket, tmp_path):
    import gzip

    text = b"".join(b"%d,%d\n" % (i, i * i) for i in range(50_000))
    put(s3_env.client(), bucket, "gz/part-0.csv.gz", gzip.compress(text))
    (obj,) = list_channel_objects(f"s3://{bucket}/gz/")
    with gzip.open(open_object_stream(obj), "rb") as unzipped:  # what a Pipe feeder does for Gzip
        assert unzipped.read() == text


def test_streaming_resumes_after_a_dropped_connection(s3_env, bucket, caplog):
    body = np.random.default_rng(12).bytes(4 << 20)
    put(s3_env.client(), bucket, "pipe/drop.bin", body)
    (obj,) = list_channel_objects(f"s3://{bucket}/pipe/drop.bin")
    proxy = CuttingProxy(s3_env.endpoint_url, cut_after=(1 << 20) + 5)
    try:
        with caplog.at_level(logging.WARNING, logger="smlocal.runtime.s3.objects"):
            data = read_stream(obj, make_client(proxy.endpoint_url))
    finally:
        proxy.close()
    assert proxy.cuts == 1 and data == body
    assert any("resuming" in r.getMessage() for r in caplog.records)


def test_an_object_changed_after_listing_is_refused(s3_env, bucket, tmp_path):
    put(s3_env.client(), bucket, "pipe/x.csv", b"1\n")
    (obj,) = list_channel_objects(f"s3://{bucket}/pipe/")
    put(s3_env.client(), bucket, "pipe/x.csv", b"2\n")
    with pytest.raises(CustomerError, match=f"s3://{bucket}/pipe/x.csv.*changed"):
        open_object_stream(obj)
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
    uris = upload_job_outputs(out, f"s3://{bucket}/results/", "kmeans-2024-01-01-00-00-00-000")
    prefix = f"s3://{bucket}/results/kmeans-2024-01-01-00-00-00-000/output"
    assert uris == {"model.tar.gz": f"{prefix}/model.tar.gz", "output.tar.gz": f"{prefix}/output.tar.gz"}
    keys = sorted(o["Key"] for o in s3_env.client().list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["results/kmeans-2024-01-01-00-00-00-000/output/model.tar.gz",
                    "results/kmeans-2024-01-01-00-00-00-000/output/output.tar.gz"]

    # serve --model s3://.../model.tar.gz: one object, through the download cache
    model = head_object(uris["model.tar.gz"])
    assert (model.name, model.size) == ("model.tar.gz", (out / "model.tar.gz").stat().st_size)
    (local,) = fetch_to_cache([model], tmp_path / "cache")
    assert local.read_bytes() == (out / "model.tar.gz").read_bytes()
    with tarfile.open(local) as tar:
        assert tar.getnames() == ["model_algo-1"]
    with pytest.raises(CustomerError, match=f"object 'results/missing.tar.gz' does not exist in bucket '{bucket}'"):
        head_object(f"s3://{bucket}/results/missing.tar.gz")
    with pytest.raises(CustomerError, match="bucket 'smlocal-no-such-bucket' does not exist"):
        head_object("s3://smlocal-no-such-bucket/model.tar.gz")
    with pytest.raises(CustomerError, match="names a prefix, not an object"):
        head_object(f"s3://{bucket}/results/")

    # transform output directories (a large file goes up in parts)
    results = tmp_path / "transform-out"
    (results / "sub").mkdir(parents=True)
    (results / "a.csv.out").write_text("1\n")
    big = np.random.default_rng(1).bytes(9 << 20)  # above the multipart threshold
    (results / "sub" / "b.csv.out").write_bytes(big)
    written = upload_directory(results, f"s3://{bucket}/transform/out")
    assert written == [f"s3://{bucket}/transform/out/a.csv.out", f"s3://{bucket}/transform/out/sub/b.csv.out"]
    got = s3_env.client().get_object(Bucket=bucket, Key="transform/out/sub/b.csv.out")["Body"].read()
    assert got == big


