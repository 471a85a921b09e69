"""``smlocal quickstart``: the README's first command, the whole loop on the bundled sample.

Trains k-means (k=3) on ``smlocal/samples/blobs.csv`` (CSV without a label column) with the process
backend, serves the resulting model.tar.gz, sends a few rows and prints the prediction, then stops
the server.
"""
from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from smlocal.errors import CustomerError

SAMPLE = "blobs.csv"


def sample_path() -> Path:
    path = Path(str(resources.files("smlocal") / "samples" / SAMPLE))
    if not path.is_file():
        raise CustomerError(f"The bundled sample {path} is missing; reinstall smlocal.")
    return path


def feature_dim(csv_path: Path) -> int:
    with open(csv_path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                return len(line.split(","))
    raise CustomerError(f"{csv_path} is empty.")


def first_rows(csv_path: Path, count: int = 3) -> bytes:
    rows = []
    with open(csv_path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(line.strip())
            if len(rows) == count:
                break
    return ("\n".join(rows) + "\n").encode()


def _worth_showing(line: str) -> bool:
    """Quickstart shows the quality metric and errors; the full log is in the job's log file."""
    return "#quality_metric" in line or " ERROR " in line or "Error:" in line


def run(args) -> int:
    from smlocal.runtime.endpoint import Endpoint
    from smlocal.runtime.jobs import run_training
    from smlocal.runtime.jobflags import spec_from_flags
    from smlocal.runtime.jobspec import default_job_name
    from smlocal.runtime.process import ProcessBackend
    from smlocal.runtime.progress import Display
    from smlocal.runtime.records import summary_lines

    data = sample_path()
    spec = spec_from_flags(
        algorithm="kmeans", image=None, channels=[f"train={data}"],
        content_types=["train=text/csv;label_size=0"],
        hyperparameters=["k=3", f"feature_dim={feature_dim(data)}", "mini_batch_size=100"],
        output=args.output, job_name=default_job_name("quickstart-kmeans"),
    )
    display = Display()
    display.message(f"1/3 training k-means (k=3) on {data}")
    result = run_training(spec, ProcessBackend(), display=display, echo=_worth_showing)
    for line in summary_lines(result.record):
        print(line)
    if result.status != "Completed":
        return result.exit_code or 1
    display = Display()
    display.message(f"2/3 serving {result.model_artifacts}")
    body = first_rows(data)
    with Endpoint(result.model_artifacts, ProcessBackend(), port=args.port, workers=1) as endpoint:
        rows = len(body.splitlines())
        display.message(f"3/3 POST {endpoint.url}/invocations (text/csv, {rows} rows)")
        resp = endpoint.invoke(body, "text/csv", "application/json")
    display.close()
    if resp.status != 200:
        raise CustomerError(f"The endpoint answered {resp.status}: {resp.text()}")
    print("request:")
    print(body.decode().rstrip())
    print("prediction:")
    print(resp.text().rstrip())
    return 0


def add_commands(subparsers, register=None) -> None:
    q = subparsers.add_parser("quickstart", help="train k-means on the bundled sample, serve it, predict",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("--output", default="smlocal-output", help="where the job goes (default ./smlocal-output)")
    q.add_argument("--port", type=int, default=0, help="port for the endpoint (default: any free)")
    if register is None:
        q.set_defaults(handler=run)
    else:
        register(q, run)
