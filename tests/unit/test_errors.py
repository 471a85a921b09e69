from __future__ import annotations

from smlocal.errors import (AlgorithmError, CustomerError, PayloadTooLarge, PlatformError, UnsupportedMediaType,
                            exit_code_for, failure_text, run_and_report, write_failure)


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
