"""CSV channel read throughput: smlocal's streaming reader vs np.loadtxt, pandas and polars, in one run.

    python scripts/bench_csv.py [--rows 1000000] [--dim 50] [--batch 1000] [--loadtxt-rows 100000]

Writes a rows x (1 + dim) CSV file (a 0/1 label, then float32 features in their shortest form, as
users' files hold them) under .bench/, then, each in a fresh subprocess so its peak RSS (VmHWM) is
its own:
* smlocal: streams the file through a File-mode text/csv channel in batches (best of --repeat), and
  once through a Pipe-mode channel with `cat` feeding the FIFO;
* np.loadtxt(path, delimiter=","): slow, so timed on the first --loadtxt-rows rows, reported per row;
* pandas.read_csv(header=None, engine="c") and polars.read_csv(has_header=False): the whole file into
  a frame; the rate of the read alone is the peer's figure, the float32 array after it is shown too.
A peer that is not installed (pandas, polars: the `bench` extra) is skipped with a note.
Checks that smlocal's first rows are bit for bit np.loadtxt's float64 values cast to float32. Prints
figures, ratios and the targets (>= 1x polars' rate, bounded peak RSS); asserts nothing. The output is
also written to --output (default benchmarks/bench_csv.txt; '' for none).
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import benchlib  # scripts/, beside this file
from benchlib import rss_mb, write_generated

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / ".bench"


def generate(path: Path, rows: int, dim: int) -> None:
    import numpy as np
    import polars as pl

    def chunk(out, rng, n):
        columns = {"label": rng.integers(0, 2, n).astype(np.float32)}
        columns.update({f"f{j}": rng.standard_normal(n, dtype=np.float32) for j in range(dim)})
        pl.DataFrame(columns).write_csv(out, include_header=False)

    write_generated(path, rows, chunk)


PEER_MODULES = {"loadtxt": "numpy", "pandas": "pandas", "polars": "polars"}


def smlocal_worker(mode: str, data: Path, batch: int) -> dict:
    timing, _ = benchlib.time_channel_read(data, mode, batch, "text/csv",
                                           # imported before the clock starts, as for the peers
                                           before_clock=lambda: importlib.import_module("polars"))
    return {**timing, "bytes": data.stat().st_size}


def peer_worker(peer: str, data: Path, max_rows: int) -> dict:
    """One peer's read into its own structure, then (timed apart) the float32 array training needs."""
    import numpy as np

    module = importlib.import_module(PEER_MODULES[peer])  # imported before the clock starts, as for smlocal
    start, cpu = time.perf_counter(), time.process_time()
    if peer == "loadtxt":
        frame = np.loadtxt(data, delimiter=",", max_rows=max_rows)
    elif peer == "pandas":
        frame = module.read_csv(data, header=None, engine="c")
    else:
        frame = module.read_csv(data, has_header=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    values = frame.astype(np.float32) if peer == "loadtxt" else frame.to_numpy().astype(np.float32)
    with_array = time.perf_counter() - start
    nbytes = data.stat().st_size if peer != "loadtxt" else prefix_bytes(data, values.shape[0])
    return {"rows": values.shape[0], "seconds": seconds, "cpu": cpu, "with_array": with_array, "bytes": nbytes}


def prefix_bytes(data: Path, rows: int) -> int:
    with open(data, "rb") as f:
        return sum(len(f.readline()) for _ in range(rows))


def run_worker(kind: str, data: Path, extra: list[str]) -> dict:
    return benchlib.run_worker(__file__, [kind, "--data", str(data), *extra])


def bit_identical(data: Path, rows: int) -> bool:
    """smlocal's reader on the first ``rows`` rows == np.loadtxt's float64 values cast to float32."""
    import numpy as np

    from smlocal.data.csv import iter_csv_blocks

    with open(data, "rb") as f:
        head = b"".join(f.readline() for _ in range(rows))
    ours = np.concatenate([b.values for b in iter_csv_blocks(io.BytesIO(head), "head.csv", chunk_size=1 << 20)])
    exact = np.loadtxt(io.BytesIO(head), delimiter=",", dtype=np.float64, ndmin=2).astype(np.float32)
    return ours.dtype == exact.dtype and ours.tobytes() == exact.tobytes()


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class Report:
    """Prints each line and keeps it, for the output file."""

    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def write(self, path: str, header: str) -> None:
        if path:
            Path(path).write_text("\n".join([header, *self.lines, "exit 0"]) + "\n")


def measure(args, data: Path, say: Report) -> dict[str, dict]:
    """smlocal File mode and polars alternate, best of --repeat each, so that load from other work
    weighs on both alike; the slower peers run once."""
    batch = ["--batch", str(args.batch)]
    peer_args = ["--loadtxt-rows", str(args.loadtxt_rows)]
    for module in ("pandas", "polars"):
        if not installed(module):
            say(f"  note: {module} is not installed (pip install -e '.[bench]'): the {module} peer is skipped")
    runs: dict[str, list[dict]] = {"smlocal File mode": [], "polars": []}
    for _ in range(args.repeat):
        runs["smlocal File mode"].append(run_worker("file", data, batch))
        if installed("polars"):
            runs["polars"].append(run_worker("polars", data, peer_args))
    results = {name: min(found, key=lambda r: r["seconds"]) for name, found in runs.items() if found}
    results["smlocal File mode"]["maxrss_mb"] = max(r["maxrss_mb"] for r in runs["smlocal File mode"])
    results["smlocal Pipe mode via cat"] = run_worker("pipe", data, batch)
    results["loadtxt"] = run_worker("loadtxt", data, peer_args)
    if installed("pandas"):
        results["pandas"] = run_worker("pandas", data, peer_args)
    return results


def print_table(results: dict[str, dict], args, say: Report) -> None:
    names = {"loadtxt": f"np.loadtxt, first {min(args.loadtxt_rows, args.rows):,} rows (slow)",
             "pandas": "pandas read_csv (C engine)", "polars": f"polars read_csv (best of {args.repeat})"}
    say(f"\n  {'reader':<44} {'rows/s':>11} {'MB/s':>8} {'seconds':>8} {'MB/s CPU':>9} {'peak RSS':>9} "
        f"{'+float32 array':>15}")
    for name, r in results.items():
        array = f"{r['bytes'] / r['with_array'] / 1e6:>10,.1f} MB/s" if "with_array" in r else ""
        label = names.get(name, name + (f" (best of {args.repeat})" if "File" in name else ""))
        say(f"  {label:<44} {r['rows'] / r['seconds']:>11,.0f} {r['bytes'] / r['seconds'] / 1e6:>8,.1f} "
            f"{r['seconds']:>8.3f} {r['bytes'] / r['cpu'] / 1e6:>9,.1f} {r['maxrss_mb']:>6,.0f} MB {array:>15}")


def print_ratios(results: dict[str, dict], data_mb: float, say: Report) -> None:
    ours = results["smlocal File mode"]
    rate = ours["rows"] / ours["seconds"]
    say("")
    for peer in ("polars", "pandas", "loadtxt"):
        if peer in results:
            r = results[peer]
            wall = rate / (r["rows"] / r["seconds"])
            cpu = (ours["rows"] / ours["cpu"]) / (r["rows"] / r["cpu"])
            say(f"  smlocal File mode / {peer}: {wall:.2f}x (rows/s, wall clock); {cpu:.2f}x by CPU time")
    rss = max(results["smlocal File mode"]["maxrss_mb"], results["smlocal Pipe mode via cat"]["maxrss_mb"])
    say(f"  peak RSS of smlocal streaming: {rss:.0f} MB for a {data_mb:.0f} MB file (peers hold the whole file)")
    if "polars" in results:
        polars = results["polars"]["rows"] / results["polars"]["seconds"]
        say(f"\n  targets: smlocal >= 1x polars' rate: {'met' if rate >= polars else 'NOT met'}; "
            f"peak RSS <= 300 MB while streaming: {'met' if rss <= 300 else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1000, help="mini_batch_size of the channel")
    parser.add_argument("--loadtxt-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "bench_csv.txt"))
    parser.add_argument("--worker", choices=["file", "pipe", "loadtxt", "pandas", "polars"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = smlocal_worker(args.worker, args.data, args.batch) if args.worker in ("file", "pipe") else \
            peer_worker(args.worker, args.data, args.loadtxt_rows)
        print(json.dumps({**result, "maxrss_mb": rss_mb()}))
        return 0

    sys.path.insert(0, str(ROOT / "src"))
    say = Report()
    header = (f"== scripts/bench_csv.py ({datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})")
    BENCH.mkdir(exist_ok=True)
    data = BENCH / f"csv_{args.rows}x{args.dim + 1}.csv"
    if not data.exists():
        t = time.perf_counter()
        generate(data, args.rows, args.dim)
        say(f"generated {data} in {time.perf_counter() - t:.1f} s")
    data_mb = data.stat().st_size / 1e6
    say(f"data: {args.rows:,} rows x {args.dim + 1} columns (label + {args.dim} features), {data_mb:.1f} MB "
        f"({data.relative_to(ROOT)}); first {min(20_000, args.rows):,} rows bit-identical to np.loadtxt "
        f"float64 -> float32: {bit_identical(data, min(20_000, args.rows))}")
    say(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start (wall-clock figures "
        f"drop when other work shares the CPUs), Python {sys.version.split()[0]}")
    results = measure(args, data, say)
    print_table(results, args, say)
    print_ratios(results, data_mb, say)
    say.write(args.output, header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
