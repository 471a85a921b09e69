"""What ``container/train`` and ``container/serve`` call: thin, all errors mapped in one place."""
from __future__ import annotations

import os
import sys

from smlocal import algorithms
from smlocal.blas_kernel import CORETYPE_ENV, choose_openblas_kernel
from smlocal.environment import Paths, TrainingEnv, base_dir, load_training_env
from smlocal.errors import CustomerError, run_and_report

ALGORITHM_ENV = "SMLOCAL_ALGORITHM"
DEFAULT_ALGORITHM = "kmeans"


def algorithm_name(environ=None) -> str:
    env = os.environ if environ is None else environ
    return algorithms.normalize(env.get(ALGORITHM_ENV) or DEFAULT_ALGORITHM)


def _run_algorithm(env: TrainingEnv) -> None:
    name = algorithm_name()
    if name not in algorithms.REGISTRY:
        raise CustomerError(
            f"Unknown algorithm '{name}' in {ALGORITHM_ENV}; use one of: {', '.join(algorithms.NAMES)}."
        )
    algorithms.train_function(name)(env)


def _run_job() -> None:
    """Script mode when a user program is named, else the built-in algorithm. The hosts come from the engine
    that placed this one (``discovery``); where nobody laid out /opt/ml (a job spec in the environment) this
    node lays it out itself, and the first node writes model.tar.gz to the job's output."""
    from dataclasses import replace

    from smlocal.algorithms.cluster.discovery import discover
    from smlocal.engine.job import finish_engine_job, prepare_engine_job
    from smlocal.scriptmode.training import requested_program, run_user_script

    base = base_dir()
    placement = discover(load_training_env(base), os.environ)
    engine_job = prepare_engine_job(os.environ, base, placement)
    if engine_job is not None:
        os.environ.update(engine_job.env)  # the job's Environment, as SageMaker gives it to the container
    env = replace(load_training_env(base), resources=placement)
    program = requested_program(env)
    if program is not None:
        run_user_script(env, program)
    else:
        _run_algorithm(env)
    if engine_job is not None:
        finish_engine_job(engine_job)


def train(argv: list[str] | None = None) -> int:
    from smlocal.logs import setup_logging

    kernel = choose_openblas_kernel()  # before anything loads numpy
    logger = setup_logging(os.environ.get("SMLOCAL_LOG_LEVEL", "info"))
    logger.info("Docker entrypoint called with argument(s): train")
    if kernel is not None:
        logger.debug(f"OpenBLAS kernels: {kernel} ({CORETYPE_ENV})")
    base = base_dir()
    return run_and_report(_run_job, lambda: Paths(base).failure_file)


def serve(argv: list[str] | None = None) -> int:
    choose_openblas_kernel()  # before the server's imports load numpy
    from smlocal.serving.server import main as serve_main

    return serve_main(argv)


def main_train() -> None:  # console-script style wrappers for container/*
    sys.exit(train(sys.argv[1:]))


def main_serve() -> None:
    sys.exit(serve(sys.argv[1:]))
