#!/usr/bin/env python3
"""Pipe mode from S3: memory and disk while a large S3 channel streams into a real FIFO.

A real S3 API (moto's server, a separate process on 127.0.0.1, objects kept in its memory) receives a
channel of --objects objects totalling --size-mb, uploaded by a separate generator process (multipart,
8 MB parts of seeded random bytes). This process then lists the channel and streams every object with
``smlocal.runtime.s3.open_object_stream`` into a FIFO, read by a consumer process that hashes what it
gets. Neither the server, the generator nor the consumer count towards this process's memory.

Prints: throughput, this process's peak RSS (getrusage) and sampled RSS, the disk used on the temp
directory's filesystem before/after/peak (sampled every 0.1 s; other programs on the machine add noise),
the bytes under the benchmark's own directory, and whether the consumer's SHA-256 matches the
generator's. Target: peak RSS <= 400 MB, disk flat.

    .venv/bin/python scripts/bench_s3_pipe.py --size-mb 64     # quick
    .venv/bin/python scripts/bench_s3_pipe.py                  # 1 GB
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

MB = 1 << 20
PART = 8 * MB


def object_sizes(total: int, count: int) -> list[int]:
    base = total // count
    return [base + (1 if i < total % count else 0) for i in range(count)]


def generate(endpoint_url: str, bucket: str, prefix: str, size_mb: int, count: int) -> None:
    """Child process: upload the channel in 8 MB parts; print the SHA-256 of all objects in key order."""
    import boto3
    import numpy as np

    client = boto3.client("s3", endpoint_url=endpoint_url)
    client.create_bucket(Bucket=bucket)
    digest = hashlib.sha256()
    for index, size in enumerate(object_sizes(size_mb * MB, count)):
        key = f"{prefix}part-{index:05d}.bin"
        upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        parts, offset, number = [], 0, 1
        while offset < size:
            data = np.random.default_rng([index, number]).bytes(min(PART, size - offset))
            digest.update(data)
            etag = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=data)["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
            offset += len(data)
            number += 1
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})
        print(f"\rgenerating: {index + 1}/{count} objects", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(json.dumps({"sha256": digest.hexdigest()}))


CONSUMER = """
import hashlib, json, sys
digest, total = hashlib.sha256(), 0
with open(sys.argv[1], "rb", buffering=0) as fifo:
    while True:
        data = fifo.read(1 << 20)
        if not data:
            break
        digest.update(data)
        total += len(data)
print(json.dumps({"sha256": digest.hexdigest(), "bytes": total}))
"""


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


class Sampler(threading.Thread):
    """Peak RSS of this process and peak disk use of a filesystem, every 0.1 s."""

    def __init__(self, disk_path: Path):
        super().__init__(daemon=True)
        import psutil

        self._process = psutil.Process()
        self._disk_path = disk_path
        self._done = threading.Event()
        self.peak_rss = 0
        self.peak_disk = 0

    def run(self) -> None:
        while not self._done.wait(0.1):
            self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)
            self.peak_disk = max(self.peak_disk, shutil.disk_usage(self._disk_path).used)

    def stop(self) -> None:
        self._done.set()
        self.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--objects", type=int, default=16)
    parser.add_argument("--chunk-mb", type=float, default=1.0, help="read size from S3 / write size to the FIFO")
    parser.add_argument("--endpoint-url", help="use this S3 endpoint instead of starting moto")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", default="smlocal-bench")
    parser.add_argument("--prefix", default="pipe/")
    args = parser.parse_args()

    if args.generate:
        generate(args.endpoint_url, args.bucket, args.prefix, args.size_mb, args.objects)
        return 0

    from tests.s3server import start_moto_server

    work = Path(tempfile.mkdtemp(prefix="bench-s3-pipe-"))
    server = None
    try:
        endpoint = args.endpoint_url
        if endpoint is None:
            largest = max(object_sizes(args.size_mb * MB, args.objects))
            # moto spools objects above its buffer size to temp files: keep them in its memory instead,
            # so the disk figures below are the streaming's alone
            server = start_moto_server({"MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(largest + 64 * MB)}, log_dir=work)
            endpoint = server.endpoint_url
            for name, value in server.environ(work / "aws").items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        started = time.monotonic()
        generated = subprocess.run(
            [sys.executable, __file__, "--generate", "--endpoint-url", endpoint, "--bucket", args.bucket,
             "--prefix", args.prefix, "--size-mb", str(args.size_mb), "--objects", str(args.objects)],
            check=True, stdout=subprocess.PIPE, text=True, env=os.environ)
        expected = json.loads(generated.stdout)["sha256"]
        print(f"generated {args.size_mb} MB in {args.objects} objects in {time.monotonic() - started:.1f} s "
              f"(separate process)")

        from smlocal.runtime import s3

        client = s3.make_client(endpoint)
        rss_after_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        disk_before = shutil.disk_usage(work).used
        work_before = tree_bytes(work)
        sampler = Sampler(work)
        sampler.start()

        started = time.monotonic()
        objects = s3.list_channel_objects(f"s3://{args.bucket}/{args.prefix}", client=client, channel="train")
        fifo = work / "train_0"
        os.mkfifo(fifo)
        consumer = subprocess.Popen([sys.executable, "-c", CONSUMER, str(fifo)], stdout=subprocess.PIPE, text=True)
        chunk = int(args.chunk_mb * MB)
        sent = 0
        with open(fifo, "wb", buffering=0) as pipe:
            for obj in objects:
                with s3.open_object_stream(obj, client, buffer_size=chunk) as stream:
                    while data := stream.read(chunk):
                        pipe.write(data)
                        sent += len(data)
        result = json.loads(consumer.communicate()[0])
        elapsed = time.monotonic() - started
        sampler.stop()

        disk_after = shutil.disk_usage(work).used
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(f"streamed {sent / MB:,.0f} MB from {len(objects)} S3 objects into a FIFO in {elapsed:.1f} s "
              f"({sent / MB / elapsed:,.0f} MB/s)")
        print(f"consumer got {result['bytes'] / MB:,.0f} MB, sha256 "
              f"{'matches' if result['sha256'] == expected else 'DIFFERS from'} the generated data")
        print(f"peak RSS of this process: {peak_rss / MB:,.0f} MB (getrusage; {rss_after_imports / MB:,.0f} MB "
              f"after imports), sampled peak {sampler.peak_rss / MB:,.0f} MB; target <= 400 MB: "
              f"{'OK' if peak_rss <= 400 * MB else 'ABOVE'}")
        print(f"disk used on {work}'s filesystem: before {disk_before / MB:,.0f} MB, after "
              f"{disk_after / MB:,.0f} MB (change {(disk_after - disk_before) / MB:+,.1f} MB), sampled peak "
              f"{(max(sampler.peak_disk, disk_after) - disk_before) / MB:+,.1f} MB over before")
        print(f"bytes under the benchmark directory: {work_before / MB:,.2f} MB before, "
              f"{tree_bytes(work) / MB:,.2f} MB after (moto log, config only)")
        return 0 if result["sha256"] == expected and result["bytes"] == sent == args.size_mb * MB else 1
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
