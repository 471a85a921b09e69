"""``container/serve``: load the model once, then run gunicorn + flask on 8080 / $SAGEMAKER_BIND_TO_PORT.

The model is loaded in the gunicorn master before any worker starts, so a model that cannot be loaded
makes ``serve`` exit non-zero with a message naming the file (not a server that answers 500 forever).
Workers are forked from the master and each holds its own copy-on-write copy of the loaded model.
SIGTERM is gunicorn's graceful stop: workers finish their in-flight requests, then the master exits 0.

Slow clients: where nginx is installed (the images), it reads each request in full before gunicorn sees
it (``serving.front``), so gunicorn runs sync workers behind it: one request at a time per worker, taken in
arrival order from the socket they share. gunicorn alone runs those with a slow lane (``serving.worker``): a
connection whose request has not arrived in full is answered on a thread. Either drops a client that sends
nothing for ``SMLOCAL_CLIENT_READ_TIMEOUT`` s (20) mid-request.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import struct
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional, Sequence

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.config import KNOWN_SETTINGS

from smlocal.artifacts.loader import Model, describe, load_model_dir
from smlocal.environment import Paths, base_dir
from smlocal.errors import CustomerError, exit_code_for, failure_text
from smlocal.serving.codecs import CODECS
from smlocal.serving.config import ServingConfig
from smlocal.serving.front import Front, nginx_wanted, socket_path
from smlocal.serving.handlers import Handlers, find_script, load_handlers
from smlocal.serving.worker import WORKER_CLASS

log = logging.getLogger("smlocal")
# SageMaker sends SIGKILL 30 s after SIGTERM: finish in-flight requests well before that.
GRACEFUL_TIMEOUT = 25


class _Arbiter(Arbiter):
    """gunicorn's master, running ``before_stop`` (the nginx front's drain) while the workers still serve."""

    before_stop: Optional[Callable[[float], None]] = None

    def stop(self, graceful: bool = True) -> None:
        if graceful and self.before_stop is not None:
            self.before_stop(self.cfg.graceful_timeout)
        super().stop(graceful)


class _Gunicorn(BaseApplication):
    """gunicorn driven from Python: no command line, no config file, our app object."""

    def __init__(self, app, options: dict, before_stop: Optional[Callable[[float], None]] = None):
        self._app = app
        self._options = options
        self._before_stop = before_stop
        super().__init__()

    def run(self) -> None:
        try:
            arbiter = _Arbiter(self)
            arbiter.before_stop = self._before_stop
            arbiter.run()
        except RuntimeError as exc:  # as BaseApplication.run reports a master that cannot start
            log.error("gunicorn could not start: %s", exc)
            raise SystemExit(1) from None

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        return self._app


SLOW_CLIENT_LOG = "Socket error processing request."  # what gunicorn logs, with a traceback, for it


class _SlowClientNote(logging.Filter):
    """gunicorn logs a dropped silent client as a socket error with a traceback: say what happened instead."""

    def __init__(self, seconds: int):
        super().__init__()
        self.seconds = seconds

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.msg == SLOW_CLIENT_LOG and isinstance(exc, (BlockingIOError, TimeoutError)):
            record.msg, record.args, record.exc_info, record.exc_text = (
                "closed a connection that sent nothing for %d s mid-request", (self.seconds,), None, None)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def client_wait_limiter(seconds: int) -> Callable:
    """gunicorn's post_worker_init hook: a read timeout on the listeners, which accepted sockets inherit
    (Linux), so a read that waits longer than ``seconds`` fails rather than holding the thread (gunicorn
    has no setting)."""
    def limit_client_waits(worker) -> None:
        timeval = struct.pack("ll", seconds, 0)
        for listener in worker.sockets:
            for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
                listener.setsockopt(socket.SOL_SOCKET, option, timeval)
        worker.log.error_log.addFilter(_SlowClientNote(seconds))
    return limit_client_waits


def gunicorn_options(config: ServingConfig, bind: str, buffered_front: bool = False) -> dict:
    """gunicorn's settings; ``buffered_front``: a proxy that reads whole requests (nginx) is in front."""
    options = {
        "bind": [bind],
        "workers": config.workers,
        # Sync workers cost less per request than threaded ones and answer in arrival order (bench_serve.py:
        # more req/s at about half the p99). Behind nginx a worker never waits on a client; alone, a client
        # that has not sent its whole request is answered on one of `threads` threads of the worker's slow lane.
        "worker_class": "sync" if buffered_front else WORKER_CLASS,
        "threads": 1 if buffered_front else config.threads,
        "timeout": config.timeout,
        "graceful_timeout": min(GRACEFUL_TIMEOUT, config.timeout),
        "preload_app": True,  # build the app once in the master; workers inherit it
        "proc_name": "smlocal-serve",
        "errorlog": "-",
        "accesslog": None,
        "loglevel": os.environ.get("SMLOCAL_LOG_LEVEL", "info"),
        "post_worker_init": client_wait_limiter(config.client_read_timeout),
        # one request per connection, as the sync workers did: a kept-alive connection would stay with one
        # worker while another is idle (measured: 0.6x the throughput of sync workers with it on)
        "keepalive": 0,
    }
    # gunicorn >= 25.1 opens a control socket at one path per user ($HOME/.gunicorn/gunicorn.ctl) that every
    # endpoint on the machine would share; serve needs none.
    if any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS):
        options["control_socket_disable"] = True
    return options


def load_user_model(handlers: Handlers, model_dir) -> object:
    try:
        return handlers.model_fn(str(model_dir))
    except Exception as exc:  # noqa: BLE001 - user code: report it with the script's name
        raise CustomerError(f"model_fn in {handlers.script} could not load the model from {model_dir}: "
                            f"{type(exc).__name__}: {exc}") from exc


def prepare(environ=None) -> tuple[Model, ServingConfig, Optional[Handlers]]:
    """Read the settings, the user's handlers if any, and load the model; raises ``CustomerError``."""
    config = ServingConfig.from_env(environ)
    if config.default_accept not in CODECS:
        raise CustomerError(
            f"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT='{config.default_accept}' is not supported; "
            f"use one of: {', '.join(CODECS)}."
        )
    paths = Paths(base_dir(environ))
    model_dir = paths.model_dir
    script = find_script(model_dir, paths.code_dir, environ)
    handlers = load_handlers(script) if script is not None else None
    if handlers is not None:
        log.info("Using the inference handlers in %s", script)
    if handlers is not None and handlers.model_fn is not None:
        model = load_user_model(handlers, model_dir)
        log.info("Loaded the user's model (%s) from %s", type(model).__name__, model_dir)
    else:
        model = load_model_dir(model_dir)
        log.info("Loaded %s from %s", describe(model), model_dir)
    return model, config, handlers


def main(argv: Optional[Sequence[str]] = None) -> int:
    from smlocal.logs import setup_logging
    from smlocal.serving.app import create_app

    setup_logging(os.environ.get("SMLOCAL_LOG_LEVEL", "info"))
    if argv:
        log.info("serve ignores its arguments: %s", " ".join(argv))
    try:
        model, config, handlers = prepare()
    except Exception as exc:  # noqa: BLE001 - report why the server cannot start, then exit non-zero
        log.error(failure_text(exc))
        return exit_code_for(exc)
    app = create_app(model, config, handlers)
    nginx = nginx_wanted()
    if nginx is None:
        return run_gunicorn(app, config, gunicorn_options(config, f"{config.host}:{config.port}"))
    run_dir = Path(tempfile.mkdtemp(prefix="smlocal-serve-"))
    try:
        os.chmod(run_dir, 0o755)  # run as root, nginx's workers are another user: they must reach the socket
        front = Front(nginx, config, run_dir)
        options = {**gunicorn_options(config, f"unix:{socket_path(run_dir)}", buffered_front=True),
                   "when_ready": front.start, "on_exit": front.stop}
        code = run_gunicorn(app, config, options, before_stop=front.drain)
        front.stop()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 1 if front.failed_code is not None else code


def run_gunicorn(app, config: ServingConfig, options: dict,
                 before_stop: Optional[Callable[[float], None]] = None) -> int:
    """gunicorn's arbiter until it stops; its exit status."""
    lane = "" if options["worker_class"] == "sync" else f" ({options['threads']} slow-lane thread(s) each)"
    log.info("Starting gunicorn on %s with %d sync worker(s)%s, timeout %d s, max payload %d MB",
             options["bind"][0], config.workers, lane, config.timeout, config.max_payload_mb)
    master = os.getpid()
    try:
        _Gunicorn(app, options, before_stop).run()
    except SystemExit as exc:  # gunicorn's arbiter ends with sys.exit(status), and so does each forked worker
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if os.getpid() != master:
            # A worker's exit unwinds through the master's stack it was forked in: ending here keeps it from
            # running the master's cleanup (stopping nginx, deleting the socket's directory) on its way out.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    return 0
