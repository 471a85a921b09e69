"""What the benchmark scripts share: memory figures, generated data files, worker processes."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Callable


def rss_mb(field: str = "VmHWM", pid: int | str = "self") -> float:
    """A process's RSS at its peak (VmHWM) or now (VmRSS), in MB; this one's by default. VmHWM, not ru_maxrss:
    Linux carries ru_maxrss over fork+exec, so a child of a big parent would report the parent's peak."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    if pid != "self":
        return 0.0  # gone, or a kernel without the field
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_generated(path: Path, rows: int, write_chunk: Callable, chunk_rows: int = 100_000) -> None:
    """Write ``rows`` rows to ``path`` in chunks (``write_chunk(out, rng, n)``, one seeded generator), under a
    temporary name first so an interrupted run leaves no half file that a later run would take as data."""
    import numpy as np

    rng = np.random.default_rng(0)
    tmp = path.with_suffix(".partial")
    with open(tmp, "wb") as out:
        for start in range(0, rows, chunk_rows):
            write_chunk(out, rng, min(chunk_rows, rows - start))
    os.replace(tmp, path)


def run_worker(script: str, args: list[str]) -> dict:
    """Run ``script --worker ARGS`` in a fresh process (its own peak RSS) with src/ importable; the JSON
    object its last line prints."""
    src = str(Path(__file__).resolve().parent.parent / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, script, "--worker", *args], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_channel_read(data: Path, mode: str, batch: int, content_type: str | None = None,
                      before_clock: Callable[[], None] | None = None) -> tuple[dict, object]:
    """Stream ``data`` through smlocal's own channel reader (a temporary /opt/ml tree; File mode: a link,
    Pipe mode: ``cat`` into the FIFO) in ``batch``-row batches: ({rows, seconds, cpu}, the channel)."""
    import tempfile
    import time

    from smlocal.data.channels import open_channel
    from smlocal.environment import load_training_env

    work = Path(tempfile.mkdtemp(prefix="smlocal-bench-"))
    (work / "input" / "config").mkdir(parents=True)
    channel_dir = work / "input" / "data" / "train"
    channel_dir.mkdir(parents=True)
    config = {"TrainingInputMode": mode.capitalize(), **({"ContentType": content_type} if content_type else {})}
    (work / "input" / "config" / "inputdataconfig.json").write_text(json.dumps({"train": config}))
    feeder = None
    if mode == "file":
        os.symlink(data, channel_dir / data.name)
    else:
        fifo = work / "input" / "data" / "train_0"
        os.mkfifo(fifo)
        feeder = subprocess.Popen(f"exec cat {data} > {fifo}", shell=True)
    channel = open_channel(load_training_env(work), "train")
    if before_clock is not None:
        before_clock()
    rows = 0
    start, cpu = time.perf_counter(), time.process_time()
    for b in channel.batches(batch, 0):
        rows += len(b)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if feeder is not None:
        feeder.wait()
    return {"rows": rows, "seconds": seconds, "cpu": cpu}, channel
