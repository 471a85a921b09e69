"""The runtime's CLI commands: train, describe, serve, predict, transform (and quickstart).

``add_commands(subparsers)`` registers them; each sets ``handler`` (parsed args -> int exit code; cli.main maps errors).
Errors meant for people (``SmlocalError``) are printed as one clear message, not a traceback.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from smlocal.algorithms import NAMES as ALGORITHMS
from smlocal.errors import CustomerError

if TYPE_CHECKING:
    from smlocal.runtime.backends import Backend
    from smlocal.runtime.progress import Display

DEFAULT_OUTPUT = "smlocal-output"


# ------------------------------------------------------------------------------------------ backends
def choose_backend(name: str | None, image: str | None, algorithm: str | None = None,
                   program: list[str] | None = None, display: Display | None = None, *,
                   serving: bool = False) -> Backend:
    """``--backend``, else docker when an engine answers and an image is given, else process.

    Without an engine, an image falls back to local processes only where smlocal's own container can
    stand in for it: a built-in ``algorithm``, a ``program`` of the user's, or ``serving`` (smlocal's
    server loads either built-in's model, so serving needs no algorithm).
    """
    from smlocal.runtime import docker as docker_backend
    from smlocal.runtime.process import ProcessBackend

    if name == "docker":
        return docker_backend.DockerBackend(image)
    if name == "process":
        if image and display is not None:
            display.message(f"--backend process runs smlocal's own container; image '{image}' is not used")
        return ProcessBackend(program)
    if image and docker_backend.engine_available():
        return docker_backend.DockerBackend(image)
    if image and not (algorithm or program or serving):
        raise CustomerError(f"Image '{image}' needs Docker, and no Docker engine answers (DOCKER_HOST or the "
                            f"default socket). Start Docker, or use --algorithm {'|'.join(ALGORITHMS)} to run "
                            "smlocal's own container as local processes.")
    if image and display is not None:
        what = algorithm or ("model" if serving else "the job")
        display.message(f"no Docker engine answers: running {what} as local processes")
    return ProcessBackend(program)


def _program(args) -> list[str] | None:
    import shlex

    return shlex.split(args.entrypoint) if getattr(args, "entrypoint", None) else None


def _display():
    from smlocal.runtime.progress import Display

    return Display()


def _register(parser: argparse.ArgumentParser, handler: Callable[[argparse.Namespace], int]) -> None:
    """smlocal's cli.py calls ``args.handler`` and maps errors to exit codes."""
    parser.set_defaults(handler=handler)


def _sigterm_as_interrupt() -> None:
    """`kill` / a supervisor's SIGTERM stops smlocal the same way Ctrl-C does."""
    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt
    try:
        signal.signal(signal.SIGTERM, raise_interrupt)
    except ValueError:  # not in the main thread (embedded use): leave signals alone
        pass


# --------------------------------------------------------------------------------------------- train
def _train_spec(args):
    from smlocal.runtime import jobfields, jobflags, jobspec

    if args.job:
        job_file = Path(args.job)
        if args.channel:
            raise CustomerError("Give the channels either in the --job file (InputDataConfig) or with --channel, "
                                "not both.")
        try:
            body = json.loads(job_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CustomerError(f"Job file {job_file} does not exist.") from None
        except json.JSONDecodeError as exc:
            raise CustomerError(f"Job file {job_file} is not valid JSON: {exc}") from None
        except UnicodeDecodeError as exc:
            raise CustomerError(f"Job file {job_file} is not UTF-8 text (byte {exc.start}); save it as UTF-8 "
                                "JSON.") from None
        output = jobfields.output_location(args.output, "--output") if args.output else None
        spec = jobspec.parse_job(body, base=job_file.resolve().parent, output_path=output,
                                 local_output=args.local_output)
        hps = dict(spec.hyperparameters)
        hps.update(dict(jobflags.split_pair(h, "--hp") for h in args.hp))
        env = dict(spec.environment)
        env.update(dict(jobflags.split_pair(e, "--env") for e in args.env))
        spec = spec.with_overrides(
            job_name=jobspec.validate_job_name(args.job_name, "--job-name") if args.job_name else None,
            max_runtime=args.max_runtime, instance_count=args.instance_count, image=args.image,
            algorithm=args.algorithm, hyperparameters=hps, environment=env,
        )
        return spec
    return jobflags.spec_from_flags(
        algorithm=args.algorithm, image=args.image, channels=args.channel, content_types=args.content_type,
        distributions=args.distribution, compressions=args.compression, record_wrappers=args.record_wrapper,
        shuffle_seeds=args.shuffle_seed, hyperparameters=args.hp, input_mode=args.input_mode or "File",
        output=args.output or DEFAULT_OUTPUT, instance_count=args.instance_count or 1, job_name=args.job_name,
        max_runtime=args.max_runtime, environment=args.env, entry_point=args.entry_point,
        source_dir=args.source_dir, data_types=args.data_type, local_output=args.local_output,
    )


def _s3_client(args):
    """The command's one S3 client; boto3 is only loaded if some URI turns out to be s3://."""
    from smlocal.runtime.s3.client import LazyClient

    return LazyClient(getattr(args, "s3_endpoint_url", None))


def cmd_train(args) -> int:
    """Run a training job; print its outcome; exit 0 only when it completed."""
    from smlocal.runtime.jobs import run_training
    from smlocal.runtime.records import summary_lines

    spec = _train_spec(args)
    display = _display()
    backend = choose_backend(args.backend, spec.image, spec.algorithm, _program(args), display)
    _sigterm_as_interrupt()
    result = run_training(spec, backend, display=display, stop_grace=args.stop_grace, keep_work=args.keep_work,
                          s3_client=_s3_client(args))
    stream = sys.stdout if result.status == "Completed" else sys.stderr
    for line in summary_lines(result.record):
        print(line, file=stream)
    return result.exit_code


def cmd_describe(args) -> int:
    """Show a training job's record: status, FailureReason, exit code, artifacts."""
    from smlocal.runtime.records import read_record, summary_lines

    record = read_record(args.job, args.output or DEFAULT_OUTPUT)
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print("\n".join(summary_lines(record)))
    return 0


# ---------------------------------------------------------------------------------------------- serve
def _endpoint_env(args) -> dict[str, str]:
    from smlocal.runtime.jobflags import split_pair

    return dict(split_pair(e, "--env") for e in (args.env or []))


def cmd_serve(args) -> int:
    """Serve a model.tar.gz (local or s3://) until Ctrl-C."""
    from smlocal.runtime import sources
    from smlocal.runtime.endpoint import Endpoint

    display = _display()
    backend = choose_backend(args.backend, args.image, program=_program(args), display=display, serving=True)
    _sigterm_as_interrupt()
    try:
        model = sources.local_model(args.model, _s3_client(args), display)
    except BaseException:
        display.close()
        raise
    endpoint = Endpoint(model, backend, port=args.port, env=_endpoint_env(args), display=display,
                        workers=args.workers, ready_timeout=args.ready_timeout)
    try:
        endpoint.start()
        display.message(f"endpoint ready at {endpoint.url} (model {args.model}); POST {endpoint.url}/invocations. "
                        "Ctrl-C to stop.")
        while endpoint.run is not None and endpoint.run.poll() is None:
            endpoint.run.wait(1.0)
        code = endpoint.run.poll() if endpoint.run is not None else 0
        display.message(f"the server exited with code {code}")
        return 0 if code == 0 else 1  # a clean stop of the server (SIGTERM to it) is a clean exit
    except KeyboardInterrupt:
        display.message("stopping the endpoint")
        return 0
    finally:
        endpoint.stop()
        display.close()


def cmd_predict(args) -> int:
    """Send a file (or stdin) to a running endpoint and print the answer."""
    from smlocal.runtime.endpoint import invoke

    if args.file == "-":
        body = sys.stdin.buffer.read()
    else:
        try:
            body = Path(args.file).read_bytes()
        except OSError as exc:
            raise CustomerError(f"Cannot read {args.file}: {exc.strerror}.") from None
    try:
        resp = invoke(args.port, body, args.content_type, args.accept, host=args.host)
    except OSError as exc:
        raise CustomerError(f"No endpoint answers on {args.host}:{args.port} ({exc}). Start one with "
                            "`smlocal serve --model model.tar.gz --port N`.") from None
    if resp.status != 200:
        print(f"smlocal: the endpoint answered {resp.status}: {resp.text()}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(resp.body)
    if not resp.body.endswith(b"\n") and sys.stdout.isatty():
        sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()
    return 0


def cmd_transform(args) -> int:
    """Batch transform: one <file>.out per input file (input and output local or s3://)."""
    from smlocal.runtime import sources, transform
    from smlocal.runtime.endpoint import Endpoint

    display = _display()
    backend = choose_backend(args.backend, args.image, program=_program(args), display=display, serving=True)
    env = {**transform.endpoint_env(args.strategy, args.max_payload_mb), **_endpoint_env(args)}
    _sigterm_as_interrupt()
    client = _s3_client(args)
    try:
        # inputs listed, output bucket checked and model fetched before the server starts
        inputs = sources.transform_inputs(args.input, client)
        with sources.staged_output(args.output, client) as output_dir:
            model = sources.local_model(args.model, client, display)
            with Endpoint(model, backend, port=args.port, env=env, display=display, workers=args.workers,
                          ready_timeout=args.ready_timeout, name="transform") as endpoint:
                params = transform.resolve_params(
                    split_type=args.split_type, strategy=args.strategy, max_payload_mb=args.max_payload_mb,
                    assemble_with=args.assemble_with, content_type=args.content_type, accept=args.accept,
                    container=endpoint.execution_parameters(),
                )
                display.message(f"transform: SplitType={params.split_type} BatchStrategy={params.strategy} "
                                f"MaxPayloadInMB={params.max_payload_mb} AssembleWith={params.assemble_with}")
                outputs = transform.run_transform(endpoint, None, output_dir, params, display, objects=inputs)
    finally:
        display.close()
    print(f"transformed {len(outputs)} file(s) into {args.output}")
    return 0


# ------------------------------------------------------------------------------------------ register
def _backend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("process", "docker"),
                   help="where the container runs (default: docker when an engine answers and --image is "
                        "given, else local processes)")
    p.add_argument("--image", help="Docker image (e.g. smlocal:latest)")
    p.add_argument("--entrypoint", help="process backend: a SageMaker-contract program to run instead of "
                                        "smlocal's container (it gets 'train' or 'serve' as argument)")


def _serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model.tar.gz, s3://bucket/key/model.tar.gz, or a model directory")
    p.add_argument("--workers", type=int, help="server workers (MODEL_SERVER_WORKERS)")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="environment for the server")
    p.add_argument("--ready-timeout", type=float, default=120.0, help="seconds to wait for /ping (default 120)")
    _s3_options(p)
    _backend_options(p)


def _s3_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--s3-endpoint-url", metavar="URL",
                   help="S3 endpoint for s3:// URIs (default: AWS_ENDPOINT_URL_S3, else AWS); credentials and "
                        "region come from the standard AWS chain")


def add_commands(subparsers) -> None:
    """Register train, describe, serve, predict, transform and quickstart on an argparse subparsers object."""
    from smlocal.runtime import quickstart

    for add in (_add_train, _add_describe, _add_serve, _add_predict, _add_transform):
        add(subparsers)
    quickstart.add_commands(subparsers, _register)


def _add_train(subparsers) -> None:
    t = subparsers.add_parser("train", help="run a training job (CreateTrainingJob JSON or flags)",
                              description="Run a SageMaker-style training job locally.")
    t.add_argument("--job", help="CreateTrainingJob request body (JSON file)")
    t.add_argument("--algorithm", choices=ALGORITHMS)
    t.add_argument("--entry-point", metavar="SCRIPT",
                   help="script mode: run this script (.py, module or executable) instead of a built-in")
    t.add_argument("--source-dir", metavar="DIR", help="script mode: the directory or .tar.gz holding the "
                                                       "entry point; it becomes /opt/ml/code")
    _channel_options(t)
    t.add_argument("--hp", action="append", default=[], metavar="K=V", help="a hyperparameter (repeatable)")
    t.add_argument("--env", action="append", default=[], metavar="K=V", help="container environment (repeatable)")
    t.add_argument("--input-mode", choices=("File", "Pipe", "FastFile"))
    t.add_argument("--output", help=f"output directory or s3:// URI (S3OutputPath; default ./{DEFAULT_OUTPUT})")
    t.add_argument("--local-output", metavar="DIR",
                   help=f"with an s3:// output: where the job's record, logs and artifact copies go "
                        f"(default ./{DEFAULT_OUTPUT})")
    t.add_argument("--instance-count", type=int)
    t.add_argument("--job-name")
    t.add_argument("--max-runtime", type=int, metavar="SECONDS", help="MaxRuntimeInSeconds")
    t.add_argument("--keep-work", action="store_true", default=None,
                   help="keep the hosts' /opt/ml trees (kept anyway when the job does not complete)")
    t.add_argument("--stop-grace", type=float, default=120.0, help=argparse.SUPPRESS)
    _s3_options(t)
    _backend_options(t)
    _register(t, cmd_train)


def _channel_options(t: argparse.ArgumentParser) -> None:
    """``train``'s channels and their InputDataConfig settings, each ``NAME=VALUE`` and repeatable."""
    t.add_argument("--channel", action="append", default=[], metavar="NAME=PATH",
                   help="a channel: a directory, a file or an s3://bucket/prefix URI (repeatable)")
    t.add_argument("--data-type", action="append", default=[], metavar="NAME=S3Prefix|ManifestFile",
                   help="an s3:// channel's S3DataType (default S3Prefix; ManifestFile for a URI naming "
                        ".amazon.manifest)")
    t.add_argument("--content-type", action="append", default=[], metavar="NAME=TYPE",
                   help="a channel's ContentType, e.g. train=text/csv;label_size=0")
    t.add_argument("--distribution", action="append", default=[], metavar="NAME=FullyReplicated|ShardedByS3Key")
    t.add_argument("--compression", action="append", default=[], metavar="NAME=None|Gzip")
    t.add_argument("--record-wrapper", action="append", default=[], metavar="NAME=None|RecordIO")
    t.add_argument("--shuffle-seed", action="append", default=[], metavar="NAME=SEED")


def _add_describe(subparsers) -> None:
    d = subparsers.add_parser("describe", help="show a training job's status and FailureReason")
    d.add_argument("job", help="job directory (<output>/<job-name>) or job name")
    d.add_argument("--output", help=f"where job names are looked up (default ./{DEFAULT_OUTPUT})")
    d.add_argument("--json", action="store_true", help="print the whole record as JSON")
    _register(d, cmd_describe)


def _add_serve(subparsers) -> None:
    s = subparsers.add_parser("serve", help="serve a model.tar.gz on a local port")
    _serve_options(s)
    s.add_argument("--port", type=int, default=8080, help="port on this machine (default 8080; 0 = any free)")
    _register(s, cmd_serve)


def _add_predict(subparsers) -> None:
    p = subparsers.add_parser("predict", help="send a file or stdin to a running endpoint")
    p.add_argument("file", help="request body file, or - for stdin")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--content-type", required=True, help="e.g. text/csv, application/json")
    p.add_argument("--accept", help="e.g. application/json, text/csv, application/jsonlines")
    _register(p, cmd_predict)


def _add_transform(subparsers) -> None:
    x = subparsers.add_parser("transform", help="batch transform a directory of files")
    _serve_options(x)
    x.add_argument("--input", required=True, help="input file or directory, or an s3://bucket/prefix URI")
    x.add_argument("--output", required=True, help="output directory or s3:// URI (<file>.out per input)")
    x.add_argument("--content-type", help="ContentType of the requests")
    x.add_argument("--accept", help="Accept of the requests")
    x.add_argument("--split-type", choices=("None", "Line", "RecordIO"))
    x.add_argument("--strategy", choices=("SingleRecord", "MultiRecord"), help="BatchStrategy")
    x.add_argument("--assemble-with", choices=("None", "Line"))
    x.add_argument("--max-payload-mb", type=int, help="MaxPayloadInMB (0-100)")
    x.add_argument("--port", type=int, default=0, help="port for the transform's server (default: any free)")
    _register(x, cmd_transform)
