"""Training job records: written, found again by directory, file or job name, and summarised."""
from __future__ import annotations

import pytest

from smlocal.errors import CustomerError
from smlocal.runtime.records import RECORD_NAME, read_record, summary_lines, write_record


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
