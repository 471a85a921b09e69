"""Tests of the error hierarchy: failure text, exit codes, HTTP statuses, and the one failure report."""
from __future__ import annotations

import logging
import signal

import pytest

from smlocal.errors import (INTERRUPTED_EXIT_CODE, TIMEOUT_EXIT_CODE, AlgorithmError, CustomerError, PayloadTooLarge,
                            PlatformError, UnsupportedMediaType, UserHandlerError, exit_code_for, failure_text,
                            killed_by, report, run_and_report, signal_number, write_failure)


def test_failure_text_and_exit_codes():
    assert failure_text(CustomerError("bad k")) == "Customer Error: bad k"
    assert failure_text(AlgorithmError("boom")) == "Algorithm Error: boom"
    assert failure_text(PlatformError("disk")) == "Platform Error: disk"
    assert exit_code_for(CustomerError("x")) == 2
    assert exit_code_for(AlgorithmError("x")) == 1
    assert exit_code_for(PlatformError("x")) == 3
    assert exit_code_for(ValueError("x")) == 1
    assert failure_text(ValueError("oops")).startswith("Algorithm Error: An unexpected error occurred (ValueError: oops")


def test_http_statuses():
    assert CustomerError.http_status == 400
    assert UnsupportedMediaType.http_status == 415
    assert PayloadTooLarge.http_status == 413
    assert UserHandlerError.http_status == 500
    assert failure_text(UserHandlerError("predict_fn failed")) == "User Handler Error: predict_fn failed"


def test_host_exit_codes():
    assert (TIMEOUT_EXIT_CODE, INTERRUPTED_EXIT_CODE, killed_by(signal.SIGKILL)) == (124, 130, 137)
    assert signal_number(-9) == signal_number(137) == signal.SIGKILL
    assert signal_number(0) is None and signal_number(2) is None and signal_number(128) is None


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def logged():
    """The messages logged to ``smlocal`` (a handler of its own: setup_logging turns propagation off)."""
    handler = _Messages()
    logger = logging.getLogger("smlocal")
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def test_report_logs_writes_the_failure_and_returns_the_exit_code(tmp_path, logged):
    failure = tmp_path / "output" / "failure"
    assert report(PlatformError("disk full"), failure) == 3
    assert failure.read_text() == "Platform Error: disk full"
    assert logged == ["Platform Error: disk full"]  # our own errors: no traceback


def test_report_of_a_bug_logs_its_traceback(tmp_path, logged):
    try:
        raise KeyError("x")
    except KeyError as exc:
        assert report(exc, tmp_path / "failure") == 1
    assert logged[0] == "Algorithm Error: An unexpected error occurred (KeyError: 'x')"
    assert logged[1].startswith("Traceback (most recent call last)")


def test_report_still_returns_the_exit_code_when_the_failure_file_cannot_be_written(tmp_path, capsys):
    blocker = tmp_path / "output"
    blocker.write_text("a file where the output directory should be")
    assert report(CustomerError("bad k"), blocker / "failure") == 2
    assert "could not write failure file" in capsys.readouterr().err


def test_run_and_report_writes_failure_once(tmp_path):
    failure = tmp_path / "output" / "failure"

    def bad():
        raise CustomerError("The value 'x' is not valid for the 'k' hyperparameter")

    assert run_and_report(bad, lambda: failure) == 2
    assert failure.read_text() == "Customer Error: The value 'x' is not valid for the 'k' hyperparameter"

    def crash():
        raise RuntimeError("later")

    # the first cause wins: an existing failure file is not overwritten
    assert run_and_report(crash, lambda: failure) == 1
    assert failure.read_text().startswith("Customer Error:")


def test_run_and_report_success_writes_nothing(tmp_path):
    failure = tmp_path / "failure"
    assert run_and_report(lambda: None, lambda: failure) == 0
    assert not failure.exists()


def test_write_failure_keeps_existing(tmp_path):
    path = tmp_path / "failure"
    assert write_failure(path, "first")
    assert not write_failure(path, "second")
    assert path.read_text() == "first"
