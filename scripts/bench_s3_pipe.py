#!/usr/bin/env python3
"""Pipe mode from S3: memory and disk of a real Pipe-mode k-means job over a large S3 channel.

--mode job (default): a RecordIO-protobuf channel of --size-mb in --objects objects is uploaded to a
real S3 API (moto's server, its own process on 127.0.0.1, objects kept in its memory) by a separate
generator process; then `python -m smlocal.runtime train --input-mode Pipe --channel train=s3://...`
runs k-means with the process backend: the runtime streams every object from S3 into the FIFO and the
container's train process reads it. Sampled every 0.1 s with psutil: the summed RSS of the runtime's
whole process tree (runtime + container; moto and the generator are not in it), the bytes under the
job directory and the S3 download cache (peak), and the free-space drop of the filesystem (noisy:
other programs write too). Prints status, wall time, throughput, GetObject requests the server saw,
rows the algorithm read. Target: peak memory <= 400 MB, disk flat.

--mode stream: the S3 layer alone. A real S3 API (moto's server, a separate process on 127.0.0.1, objects kept in its memory) receives a
channel of --objects objects totalling --size-mb, uploaded by a separate generator process (multipart,
8 MB parts of seeded random bytes). This process then lists the channel and streams every object with
``smlocal.runtime.s3.objects.open_object_stream`` into a FIFO, read by a consumer process that hashes what it
gets. Neither the server, the generator nor the consumer count towards this process's memory.

Prints: throughput, this process's peak RSS (getrusage) and sampled RSS, the disk used on the temp
directory's filesystem before/after/peak (sampled every 0.1 s; other programs on the machine add noise),
the bytes under the benchmark's own directory, and whether the consumer's SHA-256 matches the
generator's. Target: peak RSS <= 400 MB, disk flat.

    .venv/bin/python scripts/bench_s3_pipe.py --size-mb 64                 # quick: a job over 64 MB
    .venv/bin/python scripts/bench_s3_pipe.py                              # a job over 1 GB
    .venv/bin/python scripts/bench_s3_pipe.py --mode stream --size-mb 64   # the S3 layer alone
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


def _send_part(client, bucket: str, key: str, upload: str, parts: list[dict], data: bytes) -> None:
    number = len(parts) + 1
    etag = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=data)["ETag"]
    parts.append({"PartNumber": number, "ETag": etag})


def generate_recordio(endpoint_url: str, bucket: str, prefix: str, size_mb: int, count: int, dim: int,
                      k: int) -> None:
    """Child process: a k-means channel of RecordIO-protobuf objects (blobs around ``k`` centres), each
    about ``size_mb / count`` MB, uploaded in 8 MB parts as it is encoded; prints rows and bytes."""
    import boto3
    import numpy as np

    from smlocal.data.protobuf import dense_to_records
    from smlocal.data.recordio import encode_records

    client = boto3.client("s3", endpoint_url=endpoint_url)
    client.create_bucket(Bucket=bucket)
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=10, size=(k, dim)).astype(np.float32)
    rows = total = 0
    for index, size in enumerate(object_sizes(size_mb * MB, count)):
        key = f"{prefix}part-{index:05d}.pbr"
        upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        parts: list[dict] = []
        pending = bytearray()
        written = 0
        while written < size:  # whole records only: an object may end up to one batch over its share
            X = centers[rng.integers(0, k, 2000)] + rng.normal(size=(2000, dim)).astype(np.float32)
            data = encode_records(dense_to_records(X.astype(np.float32)))
            pending += data
            written += len(data)
            rows += len(X)
            while len(pending) >= PART:
                _send_part(client, bucket, key, upload, parts, bytes(pending[:PART]))
                del pending[:PART]
        if pending:
            _send_part(client, bucket, key, upload, parts, bytes(pending))
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})
        total += written
        print(f"\rgenerating: {index + 1}/{count} objects, {total / MB:,.0f} MB", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(json.dumps({"rows": rows, "bytes": total}))


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


def _rows_read(log: Path) -> int | None:
    """Rows the algorithm read in epoch 0 (its training_data_iter metrics line)."""
    if not log.is_file():
        return None
    for line in log.read_text().splitlines():
        if line.startswith("#metrics ") and '"training_data_iter"' in line:
            metrics = json.loads(line[len("#metrics "):])
            if metrics["Dimensions"].get("epoch") == 0:
                return int(metrics["Metrics"]["Number of Records Since Last Reset"]["sum"])
    return None


def run_job(args, endpoint: str, server, work: Path) -> int:
    """Generate a RecordIO-protobuf channel in S3, run a Pipe-mode k-means job over it, print figures."""
    sys.path.insert(0, str(REPO / "scripts"))
    from bench_pipe import Sampler, _disk_used  # the process-tree RSS / job-dir disk sampler

    started = time.monotonic()
    generated = subprocess.run(
        [sys.executable, __file__, "--generate", "--mode", "job", "--endpoint-url", endpoint, "--bucket", args.bucket,
         "--prefix", args.prefix, "--size-mb", str(args.size_mb), "--objects", str(args.objects),
         "--dim", str(args.dim), "--k", str(args.k)],
        check=True, stdout=subprocess.PIPE, text=True, env=os.environ)
    channel = json.loads(generated.stdout)
    print(f"generated {channel['bytes'] / MB:,.0f} MB ({channel['rows']:,} rows x {args.dim} float32, "
          f"RecordIO-protobuf) in {args.objects} S3 objects in {time.monotonic() - started:.1f} s (separate process)")

    out, cache = work / "out", work / "s3-cache"
    name = f"bench-s3-pipe-{int(time.time())}"
    cmd = [sys.executable, "-m", "smlocal", "train", "--algorithm", "kmeans", "--backend", "process",
           "--channel", f"train=s3://{args.bucket}/{args.prefix}",
           "--content-type", "train=application/x-recordio-protobuf", "--input-mode", "Pipe",
           "--hp", f"k={args.k}", "--hp", f"feature_dim={args.dim}", "--hp", f"mini_batch_size={args.mini_batch_size}",
           "--hp", f"epochs={args.epochs}", "--output", str(out), "--job-name", name, "--s3-endpoint-url", endpoint]
    env = {**os.environ, "SMLOCAL_S3_CACHE": str(cache),
           "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    gets_before = server.log_path.read_text().count(f'"GET /{args.bucket}/{args.prefix}') if server else 0
    out.mkdir(parents=True, exist_ok=True)
    console_path = work / "console.log"
    started = time.monotonic()
    with open(console_path, "w") as console:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=console, stderr=subprocess.STDOUT)
        sampler = Sampler(proc.pid, out / name, work)  # the runtime's tree only: moto is our child, not its
        sampler.start()
        code = proc.wait()
        sampler.done.set()
        sampler.join()
    wall = time.monotonic() - started
    console_text = console_path.read_text()
    tail = console_text.splitlines()[-12:]
    status = next((line.split(": ", 1)[1] for line in tail if line.startswith("TrainingJobStatus:")), "?")
    gets = (server.log_path.read_text().count(f'"GET /{args.bucket}/{args.prefix}') - gets_before) if server else None
    rows = _rows_read(out / name / "logs" / "algo-1.log")
    cache_bytes = _disk_used(cache) if cache.exists() else 0

    print(f"job {name}: {status} (exit {code}) in {wall:.1f} s; {channel['bytes'] / MB / wall:,.1f} MB/s, "
          f"{channel['rows'] / wall / 1e3:,.0f} k rows/s over {args.epochs} epoch(s)")
    print(f"GetObject requests the server saw: {gets if gets is not None else 'n/a'} for {args.objects} objects; "
          f"rows the algorithm read in epoch 0: "
          f"{rows if rows is not None else '?'} of {channel['rows']:,}")
    print(f"peak RSS, runtime process tree (runtime + container, {sampler.peak_procs} processes at most, moto "
          f"excluded): {sampler.peak_rss / MB:,.0f} MB; target <= 400 MB: "
          f"{'OK' if sampler.peak_rss <= 400 * MB else 'ABOVE'}")
    print(f"disk: job directory peak {sampler.peak_job_disk / MB:,.1f} MB (logs, config, model), S3 cache "
          f"{cache_bytes / MB:,.1f} MB, free-space drop on {work}'s filesystem {max(0, sampler.free_start - sampler.min_free) / MB:,.0f} MB "
          f"(noisy); channel {channel['bytes'] / MB:,.0f} MB")
    if code != 0:
        print("last lines of the job's console:\n  " + "\n  ".join(tail))
    return 0 if code == 0 and rows == channel["rows"] else 1


def run_stream(args: argparse.Namespace, endpoint: str, work: Path) -> int:
    """Stream mode: the S3 layer alone, from S3 objects into a FIFO read by a separate process."""
    started = time.monotonic()
    generated = subprocess.run(
        [sys.executable, __file__, "--generate", "--mode", "stream", "--endpoint-url", endpoint, "--bucket",
         args.bucket, "--prefix", args.prefix, "--size-mb", str(args.size_mb), "--objects", str(args.objects)],
        check=True, stdout=subprocess.PIPE, text=True, env=os.environ)
    expected = json.loads(generated.stdout)["sha256"]
    print(f"generated {args.size_mb} MB in {args.objects} objects in {time.monotonic() - started:.1f} s "
          f"(separate process)")

    from smlocal.runtime.s3.client import make_client
    from smlocal.runtime.s3.objects import list_channel_objects, open_object_stream

    client = make_client(endpoint)
    rss_after_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    disk_before = shutil.disk_usage(work).used
    work_before = tree_bytes(work)
    sampler = Sampler(work)
    sampler.start()

    started = time.monotonic()
    objects = list_channel_objects(f"s3://{args.bucket}/{args.prefix}", client=client, channel="train")
    fifo = work / "train_0"
    os.mkfifo(fifo)
    consumer = subprocess.Popen([sys.executable, "-c", CONSUMER, str(fifo)], stdout=subprocess.PIPE, text=True)
    chunk = int(args.chunk_mb * MB)
    sent = 0
    with open(fifo, "wb", buffering=0) as pipe:
        for obj in objects:
            with open_object_stream(obj, client, buffer_size=chunk) as stream:
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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--objects", type=int, default=16)
    parser.add_argument("--chunk-mb", type=float, default=1.0, help="read size from S3 / write size to the FIFO")
    parser.add_argument("--endpoint-url", help="use this S3 endpoint instead of starting moto")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", default="smlocal-bench")
    parser.add_argument("--prefix", default="pipe/")
    parser.add_argument("--mode", choices=("job", "stream"), default="job",
                        help="job: a Pipe-mode k-means job through the runtime (default); stream: the S3 layer alone")
    parser.add_argument("--dim", type=int, default=50, help="job mode: features per row")
    parser.add_argument("--k", type=int, default=10, help="job mode: clusters")
    parser.add_argument("--mini-batch-size", type=int, default=5000, help="job mode")
    parser.add_argument("--epochs", type=int, default=1, help="job mode: passes over the channel")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.generate:
        if args.mode == "job":
            generate_recordio(args.endpoint_url, args.bucket, args.prefix, args.size_mb, args.objects, args.dim,
                              args.k)
        else:
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
        if args.mode == "job":
            return run_job(args, endpoint, server, work)
        return run_stream(args, endpoint, work)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
