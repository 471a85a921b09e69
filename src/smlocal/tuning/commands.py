"""``smlocal tune`` and ``smlocal describe-tuning``: tuning jobs from the command line, no server needed.

    smlocal tune --job tuning.json [--output DIR]       a CreateHyperParameterTuningJob body; one line per job
    smlocal describe-tuning NAME [--output DIR] [--plot out.png]

The tuning job and its training jobs are kept under ``--output`` exactly as ``smlocal api`` keeps them
under its state dir (the same handlers run them), so the jobs are ordinary smlocal jobs: each has its
record, logs and model.tar.gz in ``DIR/work/training-jobs/<job>/``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from smlocal.errors import INTERRUPTED_EXIT_CODE, CustomerError

DEFAULT_OUTPUT = "smlocal-output"
REGION = "us-east-1"


def local_services(output: str, backend: str | None, echo=None):
    """(TuningJobs, TrainingJobs) over a store in ``output``: the API's handlers without the HTTP server."""
    from smlocal.api.context import Context
    from smlocal.api.store import Store
    from smlocal.api.training import TrainingJobs
    from smlocal.api.tuning import TuningJobs
    from smlocal.runtime.s3.client import LazyClient

    ctx = Context(Store(output), REGION, LazyClient(), backend)
    training = TrainingJobs(ctx)
    return TuningJobs(ctx, training, echo=echo), training


def _absolute(definition: dict, base: Path) -> None:
    """Relative local paths in the definition are taken from the job file's directory."""
    def fix(uri: str) -> str:
        if "://" in uri or Path(uri).expanduser().is_absolute():
            return uri
        return str((base / uri).resolve())
    for channel in definition.get("InputDataConfig") or []:
        s3 = (channel.get("DataSource") or {}).get("S3DataSource") or {}
        if isinstance(s3.get("S3Uri"), str):
            s3["S3Uri"] = fix(s3["S3Uri"])
    output = definition.get("OutputDataConfig") or {}
    if isinstance(output.get("S3OutputPath"), str):
        output["S3OutputPath"] = fix(output["S3OutputPath"])
        if "://" not in output["S3OutputPath"]:  # the jobs write their files beside each other there
            Path(output["S3OutputPath"]).mkdir(parents=True, exist_ok=True)


def _read_body(path: str, name: str | None) -> dict:
    job_file = Path(path)
    try:
        body = json.loads(job_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CustomerError(f"Tuning job file {job_file} does not exist.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CustomerError(f"Tuning job file {job_file} is not valid JSON: {exc}") from None
    if name:
        body["HyperParameterTuningJobName"] = name
    for definition in [body.get("TrainingJobDefinition"), *(body.get("TrainingJobDefinitions") or [])]:
        if isinstance(definition, dict):
            _absolute(definition, job_file.resolve().parent)
    return body


def run_tune(args) -> int:
    from smlocal.api.protocol import ApiError, check_request

    body = _read_body(args.job, args.name)
    tuning, _ = local_services(args.output, args.backend, echo=lambda line: print(line, flush=True))
    try:
        check_request("sagemaker", "CreateHyperParameterTuningJob", body)
        tuning.create(body)
    except ApiError as exc:
        raise CustomerError(f"{exc.code}: {exc.message}") from None
    name = body["HyperParameterTuningJobName"]
    print(f"tuning job {name}: training jobs' files in {_jobs_dir(body, args.output)}", flush=True)
    try:
        while any(t.name == f"tuning-{name}" and t.is_alive() for t in tuning.ctx.threads):
            for thread in tuning.ctx.threads:
                thread.join(0.5)
    except KeyboardInterrupt:
        print("interrupted: stopping the tuning job's training jobs", flush=True)
        tuning.stop({"HyperParameterTuningJobName": name})
        _wait(tuning, name)
        return INTERRUPTED_EXIT_CODE
    answer = tuning.describe({"HyperParameterTuningJobName": name})
    for line in summary_lines(answer):
        print(line)
    return 0 if answer["HyperParameterTuningJobStatus"] == "Completed" else 1


def _jobs_dir(body: dict, output: str) -> str:
    """Where the runtime puts each job's directory: a local S3OutputPath, else below the state dir."""
    definition = body.get("TrainingJobDefinition") or (body.get("TrainingJobDefinitions") or [{}])[0]
    path = (definition.get("OutputDataConfig") or {}).get("S3OutputPath", "")
    return path if path and "://" not in path else str(Path(output) / "work" / "training-jobs")


def _wait(tuning, name: str) -> None:
    for thread in list(tuning.ctx.threads):
        if thread.name == f"tuning-{name}":
            thread.join()


def summary_lines(answer: dict) -> list[str]:
    jobs, objective = answer["TrainingJobStatusCounters"], answer["ObjectiveStatusCounters"]
    lines = [f"{answer['HyperParameterTuningJobName']}: {answer['HyperParameterTuningJobStatus']} "
             f"({answer['HyperParameterTuningJobConfig']['Strategy']})",
             "training jobs: " + ", ".join(f"{k} {v}" for k, v in jobs.items() if v),
             "objective: " + ", ".join(f"{k} {v}" for k, v in objective.items() if v)]
    if answer.get("FailureReason"):
        lines.append(f"FailureReason: {answer['FailureReason']}")
    best = answer.get("BestTrainingJob")
    if best:
        metric = best["FinalHyperParameterTuningJobObjectiveMetric"]
        tuned = " ".join(f"{k}={v}" for k, v in sorted(best["TunedHyperParameters"].items()))
        lines.append(f"best: {best['TrainingJobName']} {metric['MetricName']}={metric['Value']:.6g}  {tuned}")
    return lines


def run_describe(args) -> int:
    from smlocal.api.protocol import ApiError
    from smlocal.tuning.plot import plot_trials
    from smlocal.tuning.summary import progress_line
    from smlocal.tuning.request import Objective

    tuning, _ = local_services(args.output, None)
    try:
        answer = tuning.describe({"HyperParameterTuningJobName": args.name})
    except ApiError as exc:
        raise CustomerError(f"{exc.message} (in {Path(args.output).resolve()}; give --output)") from None
    record = tuning.get(args.name)["Local"]
    objective = Objective(record["Objective"]["Type"], record["Objective"]["MetricName"], "")
    for line in summary_lines(answer):
        print(line)
    best = None
    for trial in record["Trials"]:
        if trial["TrainingJobStatus"] == "Completed" and trial.get("Value") is not None and \
                objective.better(trial["Value"], best and best["Value"]):
            best = trial
        print(progress_line(trial, len(record["Trials"]), objective, best))
    if args.plot:
        path = plot_trials(record["Trials"], objective.metric, objective.type == "Minimize",
                           f"{args.name} ({answer['HyperParameterTuningJobConfig']['Strategy']})", Path(args.plot))
        print(f"plot: {path}")
    return 0


def add_commands(subparsers) -> None:
    t = subparsers.add_parser("tune", help="run a hyperparameter tuning job (a CreateHyperParameterTuningJob body)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--job", required=True, help="the CreateHyperParameterTuningJob request body (JSON)")
    t.add_argument("--name", help="HyperParameterTuningJobName (overrides the file's)")
    t.add_argument("--output", default=DEFAULT_OUTPUT, help=f"where the jobs go (default ./{DEFAULT_OUTPUT})")
    t.add_argument("--backend", choices=("process", "docker"), help="where the training jobs run")
    t.set_defaults(handler=run_tune)
    d = subparsers.add_parser("describe-tuning", help="a tuning job's status, jobs and best job; --plot draws them",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("name", help="HyperParameterTuningJobName")
    d.add_argument("--output", default=DEFAULT_OUTPUT, help=f"where the jobs are (default ./{DEFAULT_OUTPUT})")
    d.add_argument("--plot", metavar="PNG", help="draw each job's objective and the best so far")
    d.set_defaults(handler=run_describe)
