"""Typed errors, mapped once to failure text + exit codes (training) and HTTP statuses (serving).

The training side follows the built-in algorithms' containers: ``Customer Error: ...`` exits 2,
``Algorithm Error: ...`` (anything unexpected) exits 1, ``Platform Error: ...`` exits 3. The failure text
goes to the log and to ``output/failure``, which SageMaker reports as the job's FailureReason (developer
guide, "How Amazon SageMaker Processes Training Output"); an existing failure file is never overwritten
(the first cause wins). The host runtime's own exit codes (timeout, interrupt, signal) are named here too.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Callable

log = logging.getLogger("smlocal")


class SmlocalError(Exception):
    """Base of every error smlocal raises on purpose."""

    exit_code = 1
    prefix = "Algorithm Error"
    http_status = 500

    def failure_text(self) -> str:
        return f"{self.prefix}: {self}"


class CustomerError(SmlocalError):
    """The user's input is wrong (hyperparameter, data, config): exit 2, ``Customer Error: ...``."""

    exit_code = 2
    prefix = "Customer Error"
    http_status = 400


class AlgorithmError(SmlocalError):
    """Something went wrong inside the algorithm: exit 1, ``Algorithm Error: ...``."""


class PlatformError(SmlocalError):
    """The environment around the algorithm failed: exit 3, ``Platform Error: ...``."""

    exit_code = 3
    prefix = "Platform Error"


# Serving: request errors carry their HTTP status; the server answers with it and keeps serving.
class RequestError(CustomerError):
    http_status = 400


class UnsupportedMediaType(RequestError):
    http_status = 415


class PayloadTooLarge(RequestError):
    http_status = 413


class RequestTimeout(RequestError):
    """The client stopped sending its request body."""
    http_status = 408


class ModelLoadError(CustomerError):
    """The model directory holds nothing servable; ``serve`` exits non-zero naming the file."""


class UserHandlerError(SmlocalError):
    """An exception raised by the user's inference code: answered 500, the server stays up."""

    prefix = "User Handler Error"
    http_status = 500


class ExecuteUserScriptError(SmlocalError):
    """A script-mode user script exited non-zero; failure text in the training toolkit's format."""

    def __init__(self, exit_code: int, stderr_tail: str, command: list[str]):
        super().__init__(f"user script exited with {exit_code}")
        self.script_exit_code = exit_code
        self.stderr_tail = stderr_tail
        self.command = command

    def failure_text(self) -> str:
        return (f"ExecuteUserScriptError:\nExitCode {self.script_exit_code}\n"
                f"ErrorMessage \"{self.stderr_tail}\"\nCommand \"{' '.join(self.command)}\"")


def failure_text(exc: BaseException) -> str:
    """The text written to ``output/failure`` for ``exc``."""
    if isinstance(exc, SmlocalError):
        return exc.failure_text()
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return f"{AlgorithmError.prefix}: An unexpected error occurred ({detail})"


def exit_code_for(exc: BaseException) -> int:
    return exc.exit_code if isinstance(exc, SmlocalError) else AlgorithmError.exit_code


def write_failure(failure_path: Path, text: str) -> bool:
    """Write ``text`` to ``failure_path`` unless a failure is already recorded there. True if written."""
    failure_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(failure_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return True


def report(exc: BaseException, failure_path: Path) -> int:
    """Log ``exc``, record its failure text in ``failure_path`` (unless a failure is already recorded
    there) and return the process exit code for it."""
    text = failure_text(exc)
    log.error(text)
    if not isinstance(exc, SmlocalError):  # a bug: the traceback helps; our own errors say it all
        log.error("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    try:
        write_failure(failure_path, text)
    except OSError as write_exc:  # the failure file itself could not be written: still exit non-zero
        print(f"could not write failure file: {write_exc}", file=sys.stderr)
    return exit_code_for(exc)


def run_and_report(work: Callable[[], None], failure_path: Callable[[], Path]) -> int:
    """Run an entry point's work; map any exception to failure text and an exit code.

    ``failure_path`` is called only on failure, so a broken environment cannot hide the original error.
    Returns the process exit code (0 on success).
    """
    try:
        work()
        return 0
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - this is the one place that maps every error
        if isinstance(exc, SystemExit):
            if exc.code in (0, None):
                return 0
            raise
        return report(exc, failure_path())


# Host exit codes of the local runtime, in the shell's conventions.
TIMEOUT_EXIT_CODE = 124  # GNU timeout's code: the job reached MaxRuntimeInSeconds and was stopped
SIGNAL_EXIT_BASE = 128  # a process killed by signal N exits 128 + N


def killed_by(signum: int) -> int:
    """The exit code of a process killed by signal ``signum``: 128 + N."""
    return SIGNAL_EXIT_BASE + int(signum)


INTERRUPTED_EXIT_CODE = killed_by(signal.SIGINT)  # 130: Ctrl-C


def signal_number(code: int) -> int | None:
    """The signal that ended a process, from its exit code: ``Popen``'s -N or a container's 128 + N."""
    if code < 0:
        return -code
    if code > SIGNAL_EXIT_BASE:
        return code - SIGNAL_EXIT_BASE
    return None
