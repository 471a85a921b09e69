"""Training job records: written, found again by directory, file or job name, and summarised."""
from __future__ import annotations

import os
import socket

import pytest

from smlocal.errors import CustomerError
from smlocal.runtime.records import RECORD_NAME, read_record, runner_identity, summary_lines, write_record


def test_a_record_is_found_by_directory_file_or_job_name(tmp_path):
    record = {"TrainingJobName": "job-1", "TrainingJobStatus": "Completed", "SecondaryStatus": "Completed"}
    write_record(tmp_path / "job-1" / RECORD_NAME, record)
    assert read_record(tmp_path / "job-1") == record
    assert read_record(tmp_path / "job-1" / RECORD_NAME) == record
    assert read_record("job-1", tmp_path) == record
    with pytest.raises(CustomerError, match="No training job found"):
        read_record("job-2", tmp_path)
    (tmp_path / "job-1" / RECORD_NAME).write_text("{", encoding="utf-8")
    with pytest.raises(CustomerError, match="is not valid JSON"):
        read_record(tmp_path / "job-1")


def test_summary_lines_name_the_outcome_and_where_things_are():
    record = {"TrainingJobName": "j", "TrainingJobStatus": "Failed", "SecondaryStatus": "Failed", "ExitCode": 2,
              "FailureReason": "Customer Error: bad k", "ModelArtifacts": {"S3ModelArtifacts": "s3://b/j/model.tar.gz"},
              "LocalArtifacts": {"model": "/out/j/model.tar.gz"}, "TrainingTimeInSeconds": 3,
              "LogFiles": {"algo-1": "/out/j/logs/algo-1.log"}, "WorkDirectory": "/out/j/hosts"}
    assert summary_lines(record) == [
        "TrainingJobName: j", "TrainingJobStatus: Failed", "SecondaryStatus: Failed", "ExitCode: 2",
        "FailureReason: Customer Error: bad k", "ModelArtifacts: s3://b/j/model.tar.gz",
        "ModelArtifacts (local copy): /out/j/model.tar.gz", "TrainingTimeInSeconds: 3",
        "Log (algo-1): /out/j/logs/algo-1.log", "WorkDirectory: /out/j/hosts",
    ]


def _in_progress(runner: dict) -> dict:
    return {"TrainingJobName": "j", "TrainingJobStatus": "InProgress", "SecondaryStatus": "Training",
            "Runner": runner, "LogFiles": {"algo-1": "/out/j/logs/algo-1.log"}}


def test_a_job_whose_runner_is_gone_is_reported_failed(tmp_path):
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    runner = runner_identity(child.pid)
    child.wait()  # reaped: that PID runs nothing now
    write_record(tmp_path / "j" / RECORD_NAME, _in_progress(runner))
    record = read_record(tmp_path / "j")
    assert (record["TrainingJobStatus"], record["SecondaryStatus"]) == ("Failed", "Failed")
    assert f"PID {child.pid}" in record["FailureReason"] and "/out/j/logs/algo-1.log" in record["FailureReason"]
    assert "TrainingEndTime" not in record  # nobody saw it end


def test_a_live_runner_keeps_its_job_in_progress_and_a_reused_pid_does_not(tmp_path):
    me = runner_identity()
    assert me["Pid"] == os.getpid() and me["Host"] == socket.gethostname()
    write_record(tmp_path / "live" / RECORD_NAME, _in_progress(me))
    assert read_record(tmp_path / "live")["TrainingJobStatus"] == "InProgress"
    # the same PID, started at another time: the runner's PID was reused by an unrelated process
    write_record(tmp_path / "reused" / RECORD_NAME, _in_progress({**me, "StartTicks": me["StartTicks"] + 1}))
    assert read_record(tmp_path / "reused")["TrainingJobStatus"] == "Failed"
    # another machine's runner (a shared directory) cannot be judged from here
    write_record(tmp_path / "remote" / RECORD_NAME, _in_progress({**me, "Pid": 1 << 30, "Host": "elsewhere"}))
    assert read_record(tmp_path / "remote")["TrainingJobStatus"] == "InProgress"


def test_a_finished_job_is_left_as_it_ended(tmp_path):
    gone = {"Pid": 1 << 30, "StartTicks": 1, "Host": socket.gethostname()}
    record = {**_in_progress(gone), "TrainingJobStatus": "Completed", "SecondaryStatus": "Completed"}
    write_record(tmp_path / "j" / RECORD_NAME, record)
    assert read_record(tmp_path / "j") == record
