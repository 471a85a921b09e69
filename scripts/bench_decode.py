"""Decode throughput of smlocal's data plane vs the sagemaker SDK's reader, side by side in one run.

    python scripts/bench_decode.py [--rows 1000000] [--dim 50] [--batch 1000] [--sdk-rows 100000]

Writes a rows x dim float32 RecordIO-protobuf file (labeled, the layout of the SDK's
write_numpy_to_dense_tensor: the first rows are checked byte for byte against it) under .bench/, then
* smlocal: streams it through a File-mode channel in batches, in a fresh subprocess, so the figure and
  its peak RSS (VmHWM) cover only smlocal; best of --repeat runs; the same for Pipe mode with
  `cat` feeding the FIFO, as SageMaker's feeder would;
* SDK: sagemaker.amazon.common.read_records + numpy conversion of each record's values, as a user
  would. It is slow, so it is timed on the first --sdk-rows rows and reported per row.
Prints figures and the targets (>= 600 MB/s File mode, >= 50x the SDK, peak RSS <= 300 MB); asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import benchlib  # scripts/, beside this file
from benchlib import rss_mb, write_generated

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / ".bench"


def generate(path: Path, rows: int, dim: int) -> None:
    import numpy as np

    from smlocal.data.protobuf import dense_to_records
    from smlocal.data.recordio import encode_records

    def chunk(out, rng, n):
        x = rng.standard_normal((n, dim), dtype=np.float32)
        y = rng.integers(0, 2, n).astype(np.float32)
        out.write(encode_records(dense_to_records(x, y)))

    write_generated(path, rows, chunk)


def check_sdk_identical(path: Path, rows: int = 1000) -> bool:
    """Our file's first rows equal what the SDK's write_numpy_to_dense_tensor writes for the same arrays."""
    import io

    from sagemaker.amazon.common import write_numpy_to_dense_tensor

    from smlocal.data.protobuf import records_to_arrays
    from smlocal.data.recordio import iter_records

    with open(path, "rb") as f:
        payloads = []
        for payload in iter_records(f, str(path)):
            payloads.append(payload)
            if len(payloads) == rows:
                break
    x, y = records_to_arrays(payloads)
    buf = io.BytesIO()
    write_numpy_to_dense_tensor(buf, x, y)
    with open(path, "rb") as f:
        return f.read(len(buf.getvalue())) == buf.getvalue()


def worker(mode: str, data: Path, batch: int) -> dict:
    """Runs in its own process: stream the file through a channel, report time and peak RSS."""
    timing, channel = benchlib.time_channel_read(data, mode, batch)
    return {**timing, "dim": channel.feature_dim, "maxrss_mb": rss_mb()}


def run_worker(mode: str, data: Path, batch: int) -> dict:
    return benchlib.run_worker(__file__, [mode, "--data", str(data), "--batch", str(batch)])


def sdk_reader(data: Path, rows: int) -> dict:
    """The SDK's read_records on the first ``rows`` records, then numpy arrays, like a user would."""
    import io

    import numpy as np
    from sagemaker.amazon.common import read_records

    from smlocal.data.recordio import LENGTH_MASK, pad4

    with open(data, "rb") as f:  # every record has the same size: the subset is a byte prefix of the file
        length = int.from_bytes(f.read(8)[4:], "little") & LENGTH_MASK
        f.seek(0)
        subset = f.read((8 + pad4(length)) * rows)
    start, cpu = time.perf_counter(), time.process_time()
    records = read_records(io.BytesIO(subset))
    x = np.array([np.array(r.features["values"].float32_tensor.values, dtype=np.float32) for r in records])
    y = np.array([r.label["values"].float32_tensor.values[0] for r in records], dtype=np.float32)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert x.shape[0] == rows and y.shape == (rows,)
    return {"rows": rows, "seconds": seconds, "cpu": cpu, "bytes": len(subset)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1000, help="mini_batch_size of the channel")
    parser.add_argument("--sdk-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", choices=["file", "pipe"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.batch)))
        return 0

    sys.path.insert(0, str(ROOT / "src"))
    BENCH.mkdir(exist_ok=True)
    data = BENCH / f"dense_{args.rows}x{args.dim}_f32.pbr"
    if not data.exists():
        t = time.perf_counter()
        generate(data, args.rows, args.dim)
        print(f"generated {data} in {time.perf_counter() - t:.1f} s")
    size = data.stat().st_size
    mb = size / 1e6
    identical = check_sdk_identical(data)
    print(f"data: {args.rows:,} x {args.dim} float32 RecordIO-protobuf with float32 labels, {mb:.1f} MB "
          f"({data.relative_to(ROOT)}); first 1,000 rows byte-identical to the SDK's writer: {identical}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start (wall-clock figures "
          f"drop when other work shares the CPUs; the CPU-time column does not), Python {sys.version.split()[0]}")

    file_runs = [run_worker("file", data, args.batch) for _ in range(args.repeat)]
    best = min(file_runs, key=lambda r: r["seconds"])
    assert best["rows"] == args.rows and best["dim"] == args.dim
    pipe = min((run_worker("pipe", data, args.batch) for _ in range(args.repeat)), key=lambda r: r["seconds"])
    sdk = sdk_reader(data, min(args.sdk_rows, args.rows))

    def line(name, run, nbytes):
        rows, seconds, cpu = run["rows"], run["seconds"], run["cpu"]
        print(f"  {name:<52} {rows / seconds:>12,.0f} {nbytes / seconds / 1e6:>9,.1f} {seconds:>8.3f} "
              f"{nbytes / cpu / 1e6:>14,.1f}")

    print(f"\n  {'reader (batch size ' + str(args.batch) + ')':<52} {'rows/s':>12} {'MB/s':>9} {'seconds':>8} "
          f"{'MB/s CPU time':>14}")
    line(f"smlocal File mode, {args.rows:,} rows (best of {args.repeat})", best, size)
    line(f"smlocal Pipe mode via cat, {args.rows:,} rows (best of {args.repeat})", pipe, size)
    line(f"SDK read_records + numpy, {sdk['rows']:,}-row subset (slow)", sdk, sdk["bytes"])
    ratio = (best["rows"] / best["seconds"]) / (sdk["rows"] / sdk["seconds"])
    file_mbs = size / best["seconds"] / 1e6
    rss = max(r["maxrss_mb"] for r in file_runs)
    cpu_ratio = (best["rows"] / best["cpu"]) / (sdk["rows"] / sdk["cpu"])
    print(f"\n  smlocal File mode / SDK reader: {ratio:,.0f}x (rows/s, wall clock); {cpu_ratio:,.0f}x by CPU time")
    print(f"  peak RSS while streaming in batches (fresh process, File mode): {rss:.0f} MB; Pipe mode: "
          f"{pipe['maxrss_mb']:.0f} MB")

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(f"\n  targets: File mode >= 600 MB/s: {met(file_mbs >= 600)}; >= 50x the SDK: {met(ratio >= 50)}; "
          f"peak RSS <= 300 MB: {met(rss <= 300)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
