"""Script mode through the runtime (process backend): --entry-point/--source-dir and the job JSON's
sagemaker_program / sagemaker_submit_directory, then a model.tar.gz with code/inference.py served."""
from __future__ import annotations

import json
import tarfile

from smlocal.runtime.endpoint import Endpoint
from smlocal.runtime.process import ProcessBackend
from tests.helpers import REPO, job_channel, run_cli, training_job

EXAMPLE = REPO / "examples" / "sklearn"


def _serve_with_handlers(model_tar, tmp_path):
    """What the SDK's repack does: the trained model plus code/inference.py in one model.tar.gz."""
    repacked = tmp_path / "repacked.tar.gz"
    with tarfile.open(model_tar) as src, tarfile.open(repacked, "w:gz") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member))
        dst.add(EXAMPLE / "inference.py", arcname="code/inference.py")
    with Endpoint(repacked, ProcessBackend(), workers=1) as ep:
        resp = ep.invoke(b"3,-3,0\n-3,3,0\n", "text/csv", "application/json")
        assert resp.status == 200, resp.text()
        probabilities = resp.json()["probabilities"]
        assert probabilities[0] > 0.9 and probabilities[1] < 0.1


def test_entry_point_and_source_dir_flags(tmp_path):
    train = EXAMPLE / "data"  # the example's own labelled CSV
    cli = run_cli("train", "--entry-point", "train.py", "--source-dir", str(EXAMPLE), "--channel", f"train={train}",
                  "--content-type", "train=text/csv", "--hp", "C=0.5", "--output", str(tmp_path / "out"),
                  "--job-name", "sk", "--backend", "process")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "TrainingJobStatus: Completed" in cli.stdout
    model_tar = tmp_path / "out" / "sk" / "output" / "model.tar.gz"
    with tarfile.open(model_tar) as tar:
        assert tar.getnames() == ["model.joblib"]
    log = (tmp_path / "out" / "sk" / "logs" / "algo-1.log").read_text()
    assert "--C 0.5" in log and "training accuracy:" in log
    _serve_with_handlers(model_tar, tmp_path)


def test_job_json_with_sdk_hyperparameters_and_a_tarball(tmp_path):
    """As the SDK writes a framework job: JSON-encoded sagemaker_program and a sourcedir.tar.gz."""
    train = EXAMPLE / "data"  # the example's own labelled CSV
    sourcedir = tmp_path / "sourcedir.tar.gz"
    with tarfile.open(sourcedir, "w:gz") as tar:
        tar.add(EXAMPLE / "train.py", arcname="train.py")
    job = training_job("sk-json", [job_channel("train", str(train), ContentType="text/csv")], tmp_path / "out",
                       image="smlocal:latest", instance_type="local",
                       hps={"sagemaker_program": json.dumps("train.py"),
                            "sagemaker_submit_directory": json.dumps(f"file://{sourcedir}"), "max_iter": "50"})
    (tmp_path / "job.json").write_text(json.dumps(job))
    cli = run_cli("train", "--job", str(tmp_path / "job.json"), "--backend", "process")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert (tmp_path / "out" / "sk-json" / "output" / "model.tar.gz").is_file()


def test_failing_script_is_failed_with_its_stderr_tail(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "fail.py").write_text("import sys\nsys.stderr.write('KeyError: label column missing\\n')\nsys.exit(3)\n")
    cli = run_cli("train", "--entry-point", str(code / "fail.py"), "--output", str(tmp_path / "out"),
                  "--job-name", "bad", "--backend", "process")
    assert cli.returncode != 0
    assert "TrainingJobStatus: Failed" in cli.stderr  # a failed job's summary goes to stderr
    assert "ExecuteUserScriptError" in cli.stderr and "KeyError: label column missing" in cli.stderr
    record = json.loads((tmp_path / "out" / "bad" / "training-job.json").read_text())
    assert record["FailureReason"].startswith("ExecuteUserScriptError:\nExitCode 3")


def test_source_dir_needs_an_entry_point(tmp_path):
    cli = run_cli("train", "--source-dir", str(EXAMPLE), "--output", str(tmp_path / "out"))
    assert cli.returncode == 2 and "--source-dir needs --entry-point" in cli.stderr


def test_script_that_writes_its_own_failure_keeps_it_as_the_reason(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "own.py").write_text(
        "import os, sys\n"
        "open(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w').write('labels missing in part-3.csv')\n"
        "sys.exit(255)\n")
    cli = run_cli("train", "--entry-point", "own.py", "--source-dir", str(code), "--output", str(tmp_path / "out"),
                  "--job-name", "own", "--backend", "process")
    assert cli.returncode != 0
    record = json.loads((tmp_path / "out" / "own" / "training-job.json").read_text())
    assert record["TrainingJobStatus"] == "Failed"
    assert record["FailureReason"] == "labels missing in part-3.csv"
