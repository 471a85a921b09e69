"""The training job runner: every host of a job on one backend, watched to the end, like CreateTrainingJob.

The job's record (``records``: ``<output>/<job>/training-job.json``) says Completed, Failed or Stopped,
with the FailureReason (first 1024 characters of the failing host's ``output/failure``) and exit code.
MaxRuntimeInSeconds, Ctrl-C and a ``stop`` event set by another thread (StopTrainingJob) stop every
host: SIGTERM, then SIGKILL after the grace period (120 s, as StopTrainingJob). output.tar.gz is
collected whatever the outcome; model.tar.gz as SageMaker gives one: for a completed job, and for a
stopped one whose algorithm saved a model after SIGTERM, never for a failed one.
"""
from __future__ import annotations

import contextlib
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from smlocal.archives import safe_extract
from smlocal.errors import (INTERRUPTED_EXIT_CODE, TIMEOUT_EXIT_CODE, AlgorithmError, CustomerError, SmlocalError,
                            exit_code_for, failure_text, killed_by, signal_number)
from smlocal.runtime import packaging, sources
from smlocal.runtime.backends import Backend, Run
from smlocal.runtime.jobspec import JobSpec
from smlocal.runtime.pipes import PipeSet
from smlocal.runtime.plan import PipeFeed, TrainingPlan, name_user_sources, plan_training
from smlocal.runtime.ports import free_port_pair
from smlocal.runtime.progress import Display, human_bytes, parse_progress
from smlocal.runtime.records import RECORD_NAME, base_record, now, write_record
from smlocal.runtime.s3.client import LazyClient

FAILURE_REASON_CHARS = 1024
STOP_GRACE_S = 120.0
POLL_S = 0.2
PEER_SETTLE_S = 5.0  # after one host of a multi-host job fails, the others may notice and report it first


@dataclass
class JobResult:
    status: str  # Completed | Failed | Stopped
    secondary_status: str
    exit_code: int  # 0, the failing host's code, TIMEOUT_EXIT_CODE (MaxRuntimeInSeconds) or INTERRUPTED_EXIT_CODE
    failure_reason: str | None
    record: dict
    plan: TrainingPlan

    @property
    def model_artifacts(self) -> Path | None:
        """model.tar.gz, or None where the job has none (failed, or stopped before saving a model)."""
        return self.plan.model_tar if self.plan.model_tar.is_file() else None


@dataclass
class _Outcome:
    stopped: str | None = None  # "MaxRuntimeExceeded" | "Interrupted" | "Stopped" (the stop event)
    feeder_error: BaseException | None = None
    exit_codes: dict = field(default_factory=dict)
    first_failed: str | None = None
    upload_error: BaseException | None = None  # artifacts could not be uploaded to S3OutputPath
    uploaded: dict = field(default_factory=dict)  # artifact name -> S3 URI


class _LogSink:
    """Writes each host's lines to its log file and to the display; tracks epoch progress."""

    def __init__(self, plan: TrainingPlan, display: Display, echo: Callable[[str], bool] | None = None):
        plan.logs_dir.mkdir(parents=True, exist_ok=True)
        self.display = display
        self.echo = echo
        self.multi = len(plan.hosts) > 1
        self._files = {h.host: open(plan.logs_dir / f"{h.host}.log", "a", encoding="utf-8") for h in plan.hosts}
        self._tasks = {}
        self._lock = threading.Lock()

    def __call__(self, host: str, line: str) -> None:
        with self._lock:
            f = self._files.get(host)
            if f is not None:
                f.write(line + "\n")
                f.flush()
        if self.echo is None or self.echo(line):
            self.display.line(line, prefix=host)
        progress = parse_progress(line)
        if progress is not None:
            task = self._tasks.get(host)
            if task is None:
                task = self._tasks[host] = self.display.task(f"{host} epochs", total=100, unit="%")
            task.update(progress[1])

    def close(self) -> None:
        for f in self._files.values():
            f.close()


def _stop_all(runs: dict[str, Run], grace: float, display: Display) -> None:
    """SIGTERM every live host, wait up to ``grace`` seconds, SIGKILL what is left. A second Ctrl-C
    during the wait kills at once."""
    live = [r for r in runs.values() if r.poll() is None]
    if not live:
        return
    for run in live:
        run.terminate()
    deadline = time.monotonic() + grace
    try:
        while time.monotonic() < deadline and any(r.poll() is None for r in live):
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        display.message("interrupted again: killing the job's processes now")
    for run in live:
        if run.poll() is None:
            display.message(f"{run.name} did not stop within {grace:.0f} s: killing it")
            run.kill()
            run.wait(10)


def _failure_reason(plan: TrainingPlan, outcome: _Outcome) -> str | None:
    if outcome.feeder_error is not None:
        return failure_text(outcome.feeder_error)[:FAILURE_REASON_CHARS]
    host = outcome.first_failed
    if host is None:
        if outcome.stopped == "MaxRuntimeExceeded":
            return (f"Training job reached the stopping condition MaxRuntimeInSeconds="
                    f"{plan.spec.max_runtime} and was stopped.")
        if outcome.upload_error is not None:
            return failure_text(outcome.upload_error)[:FAILURE_REASON_CHARS]
        return None
    hp = next(h for h in plan.hosts if h.host == host)
    if hp.paths.failure_file.is_file():
        text = hp.paths.failure_file.read_text(encoding="utf-8", errors="replace")
        return name_user_sources(text, hp.user_sources())[:FAILURE_REASON_CHARS]  # the user's paths
    code = outcome.exit_codes.get(host)
    how = f"exited with code {code}"
    signum = signal_number(code) if isinstance(code, int) else None
    if signum is not None:
        with contextlib.suppress(ValueError):
            how = f"was killed by {signal.Signals(signum).name} (exit code {code})"
    return (f"{AlgorithmError.prefix}: {host} {how} without writing "
            f"output/failure. See the log {plan.logs_dir / (host + '.log')}.")[:FAILURE_REASON_CHARS]


def _root_cause(plan: TrainingPlan, hosts: list[str]) -> str:
    """Of the hosts found failed in one poll, the one that failed first: a host that wrote no output/failure
    (killed, crashed) caused the others' failures; otherwise the oldest failure file."""
    def when(host: str) -> tuple[int, int]:
        failure = next(h for h in plan.hosts if h.host == host).paths.failure_file
        try:
            return (1, failure.stat().st_mtime_ns)
        except OSError:
            return (0, 0)
    return min(hosts, key=when)


def _monitor(plan: TrainingPlan, runs: dict[str, Run], pipes: PipeSet, grace: float, display: Display,
             deadline: float | None, stop: threading.Event | None = None) -> _Outcome:
    outcome = _Outcome()
    settle_until = None
    try:
        while True:
            if outcome.feeder_error is None and outcome.first_failed is None:
                # read before the exits: a feeder sets its error before it closes the pipe, so an exit
                # caused by the pipe ending (no records) is never seen before the error that ended it
                outcome.feeder_error = pipes.error
            failed_now = []
            for host, run in runs.items():
                code = run.poll()
                if code is not None and host not in outcome.exit_codes:
                    outcome.exit_codes[host] = code
                    stopping = outcome.stopped is not None or outcome.feeder_error is not None
                    if code != 0 and not stopping:
                        failed_now.append(host)
            if failed_now and outcome.first_failed is None:
                outcome.first_failed = _root_cause(plan, failed_now)
            if len(outcome.exit_codes) == len(runs):
                break
            if outcome.first_failed is not None:  # one host failed: the job fails, stop the others
                if settle_until is None:  # multi-host: the others notice (cluster monitor) and report why
                    settle_until = time.monotonic() + (PEER_SETTLE_S if len(runs) > 1 else 0.0)
                if time.monotonic() < settle_until:
                    time.sleep(POLL_S)
                    continue
                display.message(f"{outcome.first_failed} failed: stopping the other hosts")
                _stop_all(runs, grace, display)
                continue
            if outcome.feeder_error is not None:
                _stop_all(runs, grace, display)
                continue
            if deadline is not None and time.monotonic() > deadline:
                outcome.stopped = "MaxRuntimeExceeded"
                display.message(f"MaxRuntimeInSeconds={plan.spec.max_runtime} reached: stopping the job")
                _stop_all(runs, grace, display)
                continue
            if stop is not None and stop.is_set() and outcome.stopped is None:
                outcome.stopped = "Stopped"
                display.message("stop requested: stopping the job")
                _stop_all(runs, grace, display)
                continue
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        outcome.stopped = outcome.stopped or "Interrupted"
        display.message("interrupted: stopping the job (Ctrl-C again to kill at once)")
        _stop_all(runs, grace, display)
    for host, run in runs.items():
        if host not in outcome.exit_codes:
            outcome.exit_codes[host] = run.poll() if run.poll() is not None else -9
    if outcome.feeder_error is None and outcome.first_failed is None and pipes.error is not None:
        outcome.feeder_error = pipes.error  # the data stream broke, even if the algorithm ended happily
    return outcome


def unpack_source(spec: JobSpec, s3_client: LazyClient | None = None, display: Display | None = None,
                  cache_dir: str | Path | None = None) -> JobSpec:
    """Script mode with a .tar.gz source (a local file, or an s3:// one fetched through the download
    cache): unpack it (checked member by member) into the job dir."""
    if not spec.source_dir or Path(spec.source_dir).is_dir():
        return spec
    target = spec.job_dir / "code"
    archive = sources.local_object(spec.source_dir, s3_client or LazyClient(), display, cache_dir, label="source")
    safe_extract(archive, target)
    return spec.with_overrides(source_dir=str(target))


def run_training(spec: JobSpec, backend: Backend, display: Display | None = None,
                 stop_grace: float = STOP_GRACE_S, keep_work: bool | None = None,
                 echo: Callable[[str], bool] | None = None, s3_client: LazyClient | None = None,
                 stop: threading.Event | None = None, cache_dir: str | Path | None = None) -> JobResult:
    """Plan the job, run every host on ``backend``, collect artifacts, write the record.

    ``keep_work``: keep the hosts' /opt/ml trees (default: only when the job did not complete).
    ``echo``: which container log lines to show (all by default); every line goes to the log files.
    ``s3_client``: the command's S3 client (``--s3-endpoint-url``); used only for s3:// URIs. S3 inputs
    are listed (File mode: downloaded) and an S3 output's bucket checked before anything is started.
    ``stop``: set it (from any thread) to stop the job as Ctrl-C does; the job ends Stopped.
    ``cache_dir``: the S3 download cache (default ``s3.cache.default_cache_dir()``).
    """
    s3_client = s3_client or LazyClient()
    display = display or Display(live=False)
    if (spec.job_dir / RECORD_NAME).exists():
        raise CustomerError(f"A training job named '{spec.job_name}' already exists in {spec.job_dir}. "
                            "Choose another --job-name (or TrainingJobName) or delete that directory.")
    plan = _plan(spec, s3_client, display, cache_dir)
    record = base_record(plan.spec, plan, backend.name)
    for note in plan.spec.notes:
        display.message(note)
    write_record(plan.record_file, record)
    started = time.monotonic()
    outcome = _run_hosts(plan, backend, record, display, started, stop_grace, echo, stop)
    # output.tar.gz whatever the outcome (it explains a failure); model.tar.gz as SageMaker gives one
    model_dirs = [h.paths.model_dir for h in plan.hosts]
    if _has_model(outcome, model_dirs):
        packaging.package_dirs(plan.model_tar, model_dirs)
    packaging.package_dirs(plan.output_tar, [h.paths.output_data_dir for h in plan.hosts])
    _upload(plan, outcome, s3_client, display)
    return _finish(plan, record, outcome, started, keep_work)


def _plan(spec: JobSpec, s3_client: LazyClient, display: Display, cache_dir: str | Path | None) -> TrainingPlan:
    """List (and for File mode fetch) the channels, unpack a script's source, plan every host."""
    # S3 first: a wrong bucket or an empty prefix fails here, before anything is written or started
    sources.check_output(spec, s3_client)
    objects, is_dir = sources.resolve_channels(spec, s3_client, display, cache_dir)
    spec = unpack_source(spec, s3_client, display, cache_dir)
    ps_port = free_port_pair() if spec.instance_count > 1 else None
    plan = plan_training(spec, spec.job_dir, objects, ps_port=ps_port, source_is_dir=is_dir)
    return plan


def _run_hosts(plan: TrainingPlan, backend: Backend, record: dict, display: Display, started: float,
               stop_grace: float, echo: Callable[[str], bool] | None,
               stop: threading.Event | None = None) -> _Outcome:
    """Feed the pipes, start every host and watch them to the end; a job that cannot start is recorded
    as Failed before the error goes up."""
    sink = _LogSink(plan, display, echo)
    runs: dict[str, Run] = {}
    feeds = [feed for host in plan.hosts for feed in host.pipes]
    fed = display.task("pipe data fed", unit="bytes") if feeds else None
    pipes = PipeSet(feeds, on_bytes=fed.advance if fed else None, on_epoch=_epoch_total(plan, display))
    record["TrainingStartTime"] = now()
    try:
        _start_hosts(plan, backend, record, sink, pipes, runs, display)
        deadline = started + plan.spec.max_runtime if plan.spec.max_runtime else None
        return _monitor(plan, runs, pipes, stop_grace, display, deadline, stop)
    except KeyboardInterrupt:
        _stop_all(runs, stop_grace, display)
        return _Outcome(stopped="Interrupted", exit_codes={h: r.poll() for h, r in runs.items()})
    except Exception as exc:  # the job could not start (no engine, image, disk): record it, then raise
        _stop_all(runs, 5.0, display)
        record.update({"TrainingJobStatus": "Failed", "SecondaryStatus": "Failed", "TrainingEndTime": now(),
                       "FailureReason": failure_text(exc)[:FAILURE_REASON_CHARS], "ExitCode": exit_code_for(exc),
                       "WorkDirectory": str(plan.work_dir)})
        write_record(plan.record_file, record)
        raise
    finally:
        pipes.stop()
        for run in runs.values():
            run.finish()
        sink.close()
        display.close()


def _epoch_total(plan: TrainingPlan, display: Display) -> Callable[[PipeFeed, int, int], None]:
    """The line each channel's pipe gives at the end of an epoch (the running count is throttled)."""
    host_of = {feed.fifo_dir: host.host for host in plan.hosts for feed in host.pipes}

    def say(feed: PipeFeed, epoch: int, count: int) -> None:
        display.message(f"pipe data fed: channel '{feed.channel}' epoch {epoch} on {host_of[feed.fifo_dir]}: "
                        f"{human_bytes(count)}")
    return say


def _start_hosts(plan: TrainingPlan, backend: Backend, record: dict, sink: _LogSink, pipes: PipeSet,
                 runs: dict[str, Run], display: Display) -> None:
    """Lay out every host, start the pipe feeders, then the hosts (each added to ``runs`` as it starts,
    so a failure part-way still stops those already running)."""
    spec = plan.spec
    for host in plan.hosts:
        backend.prepare(host)
    pipes.start()
    record["SecondaryStatus"] = "Training"
    write_record(plan.record_file, record)
    display.message(f"training job {spec.job_name}: {spec.instance_count} host(s), backend {backend.name}, "
                    f"logs in {plan.logs_dir}")
    for host in plan.hosts:
        runs[host.host] = backend.start_training(host, sink, job_name=spec.job_name,
                                                 entrypoint=spec.entrypoint)


def _has_model(outcome: _Outcome, model_dirs: list[Path]) -> bool:
    """A completed job has a model; a stopped one only if its algorithm saved one in the grace period
    after SIGTERM (StopTrainingJob's documented use of it); a failed one none."""
    if outcome.first_failed is not None or outcome.feeder_error is not None:
        return False
    return outcome.stopped is None or bool(packaging.collect_files(model_dirs))


def _upload(plan: TrainingPlan, outcome: _Outcome, client: LazyClient, display: Display) -> None:
    """S3OutputPath: output.tar.gz always (it explains a failure); model.tar.gz where the job has one."""
    if not plan.spec.s3_output_path:
        return
    names = sources.OUTPUT_NAMES if plan.model_tar.is_file() else ("output.tar.gz",)
    try:
        outcome.uploaded = dict(sources.upload_outputs(plan.spec, plan.output_dir, client, names))
    except SmlocalError as exc:
        outcome.upload_error = exc
        display.message(f"could not upload the artifacts: {exc}")
        return
    for name, uri in outcome.uploaded.items():
        display.message(f"uploaded {name} to {uri}")


def _finish(plan: TrainingPlan, record: dict, outcome: _Outcome, started: float, keep_work: bool | None) -> JobResult:
    reason = _failure_reason(plan, outcome)
    if outcome.first_failed is not None or outcome.feeder_error is not None:
        status, secondary = "Failed", "Failed"
        if outcome.first_failed:
            code = outcome.exit_codes.get(outcome.first_failed) or 1
            code = killed_by(-code) if code < 0 else code  # Popen's -N: the shell's 128 + N
        else:
            code = exit_code_for(outcome.feeder_error)
    elif outcome.stopped is not None:
        status = "Stopped"
        secondary = "MaxRuntimeExceeded" if outcome.stopped == "MaxRuntimeExceeded" else "Stopped"
        code = TIMEOUT_EXIT_CODE if outcome.stopped == "MaxRuntimeExceeded" else INTERRUPTED_EXIT_CODE
    elif outcome.upload_error is not None:
        status, secondary, code = "Failed", "Failed", exit_code_for(outcome.upload_error)
    else:
        status, secondary, code = "Completed", "Completed", 0
    record.update({
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "TrainingEndTime": now(),
        "TrainingTimeInSeconds": int(round(time.monotonic() - started)),
        "ExitCode": code,
        "HostExitCodes": {h: c for h, c in outcome.exit_codes.items()},
        **({"ModelArtifacts": {"S3ModelArtifacts": outcome.uploaded.get("model.tar.gz", str(plan.model_tar))}}
           if plan.model_tar.is_file() else {}),
        "OutputArtifacts": outcome.uploaded.get("output.tar.gz", str(plan.output_tar)),
    })
    if outcome.uploaded:  # the S3 URIs above; the local copies stay in the job directory
        record["LocalArtifacts"] = {**({"model": str(plan.model_tar)} if plan.model_tar.is_file() else {}),
                                    "output": str(plan.output_tar)}
    if reason:
        record["FailureReason"] = reason
    keep = keep_work if keep_work is not None else status != "Completed"
    if keep:
        record["WorkDirectory"] = str(plan.work_dir)
    else:
        shutil.rmtree(plan.work_dir, ignore_errors=True)
    write_record(plan.record_file, record)
    return JobResult(status, secondary, code, reason, record, plan)

