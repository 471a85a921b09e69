"""``container/serve``: load the model once, then run gunicorn + flask on 8080 / $SAGEMAKER_BIND_TO_PORT.

The model is loaded in the gunicorn master before any worker starts, so a model that cannot be loaded
makes ``serve`` exit non-zero with a message naming the file (not a server that answers 500 forever).
Workers are forked from the master and each holds its own copy-on-write copy of the loaded model.
SIGTERM is gunicorn's graceful stop: workers finish their in-flight requests, then the master exits 0.
"""
from __future__ import annotations

import logging
import os
from typing import Optional, Sequence

from gunicorn.app.base import BaseApplication

from smlocal.artifacts.loader import Model, describe, load_model_dir
from smlocal.environment import Paths, base_dir
from smlocal.errors import CustomerError, exit_code_for, failure_text
from smlocal.serving.codecs import CODECS
from smlocal.serving.config import ServingConfig
from smlocal.serving.handlers import Handlers, find_script, load_handlers

log = logging.getLogger("smlocal")
# SageMaker sends SIGKILL 30 s after SIGTERM: finish in-flight requests well before that.
GRACEFUL_TIMEOUT = 25


class _Gunicorn(BaseApplication):
    """gunicorn driven from Python: no command line, no config file, our app object."""

    def __init__(self, app, options: dict):
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        return self._app


def gunicorn_options(config: ServingConfig) -> dict:
    return {
        "bind": [f"{config.host}:{config.port}"],
        "workers": config.workers,
        "worker_class": "sync",
        "timeout": config.timeout,
        "graceful_timeout": min(GRACEFUL_TIMEOUT, config.timeout),
        "preload_app": True,  # build the app once in the master; workers inherit it
        "proc_name": "smlocal-serve",
        "errorlog": "-",
        "accesslog": None,
        "loglevel": os.environ.get("SMLOCAL_LOG_LEVEL", "info"),
    }


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
    log.info("Starting gunicorn on %s:%d with %d worker(s), timeout %d s, max payload %d MB",
             config.host, config.port, config.workers, config.timeout, config.max_payload_mb)
    try:
        _Gunicorn(create_app(model, config, handlers), gunicorn_options(config)).run()
    except SystemExit as exc:  # gunicorn's arbiter ends with sys.exit(status)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
