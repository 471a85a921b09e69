"""Script-mode training in-process: which program a job names, staging its code, the command line, and a
tiny real user script run in a temporary /opt/ml."""
from __future__ import annotations

import json
import os
import sys
import tarfile

import pytest

from smlocal.environment import load_training_env
from smlocal.errors import CustomerError, ExecuteUserScriptError
from smlocal.scriptmode.training import command_for, requested_program, run_user_script, stage_code
from tests.helpers import channel, write_config

# A user script that reports what it was given: its arguments and a few SM_* variables, into the model dir.
REPORTER = """\
import json, os, sys
print("hello from the user script")
report = {"argv": sys.argv[1:], "cwd": os.getcwd(), "path": sys.path,
          **{k: v for k, v in os.environ.items() if k.startswith("SM_")}}
with open(os.path.join(os.environ["SM_MODEL_DIR"], "report.json"), "w") as f:
    json.dump(report, f)
"""


def job(base, hps: dict | None = None, code: dict[str, str] | None = None):
    write_config(base, hps or {}, {"train": channel("text/csv")})
    for name, text in (code or {}).items():
        (base / "code").mkdir(exist_ok=True)
        (base / "code" / name).write_text(text)
    return load_training_env(base)


def test_requested_program(base):
    env = job(base, {"sagemaker_program": json.dumps("train.py")})
    assert requested_program(env, environ={}) == "train.py"
    assert requested_program(env, environ={"SAGEMAKER_PROGRAM": "serve.py"}) == "serve.py"
    assert requested_program(job(base, {"k": "3"}), environ={}) is None


def test_stage_code_keeps_code_already_in_place(base, tmp_path):
    env = job(base, {"sagemaker_submit_directory": json.dumps(str(tmp_path / "ignored"))}, code={"a.py": "x"})
    assert stage_code(env) == base / "code"
    assert sorted(p.name for p in (base / "code").iterdir()) == ["a.py"]


def test_stage_code_from_a_submit_directory_or_tarball(base, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("print(1)\n")
    env = job(base, {"sagemaker_submit_directory": json.dumps(f"file://{source}")})
    assert (stage_code(env) / "train.py").read_text() == "print(1)\n"

    other = tmp_path / "other"
    archive = tmp_path / "sourcedir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / "train.py", arcname="pkg/train.py")
    env = job(other, {"sagemaker_submit_directory": json.dumps(str(archive))})
    assert (stage_code(env) / "pkg" / "train.py").read_text() == "print(1)\n"


@pytest.mark.parametrize("submit, message", [
    (None, "Script mode needs the user code in"),
    ("s3://bucket/sourcedir.tar.gz", "S3 locations are not supported inside the container"),
    ("/nonexistent/sourcedir", "is neither a directory nor a .tar.gz archive"),
])
def test_stage_code_errors(base, submit, message):
    hps = {} if submit is None else {"sagemaker_submit_directory": json.dumps(submit)}
    with pytest.raises(CustomerError, match=message):
        stage_code(job(base, hps))


def test_command_for_a_script_an_executable_and_a_module(tmp_path):
    (tmp_path / "train.py").write_text("")
    assert command_for("train.py", tmp_path, ["--a", "1"]) == [sys.executable, str(tmp_path / "train.py"), "--a", "1"]
    with pytest.raises(CustomerError, match="The entry point 'missing.py' was not found in"):
        command_for("missing.py", tmp_path, [])
    tool = tmp_path / "run.sh"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o644)
    assert command_for("run.sh", tmp_path, []) == [str(tool)]
    assert os.access(tool, os.X_OK)  # made executable, as the toolkit does
    assert command_for("my_package.train", tmp_path, ["--b"]) == [sys.executable, "-m", "my_package.train", "--b"]


def test_run_user_script_passes_hyperparameters_and_the_sm_environment(base, capfd):
    env = job(base, {"sagemaker_program": json.dumps("report.py"), "epochs": "3", "layers": "[4, 2]"},
              code={"report.py": REPORTER})
    run_user_script(env, "report.py")
    report = json.loads((base / "model" / "report.json").read_text())
    assert report["argv"] == ["--epochs", "3", "--layers", "[4,2]"]
    assert report["cwd"] == str(base / "code") and str(base / "code") in report["path"]
    assert report["SM_CHANNEL_TRAIN"] == str(base / "input" / "data" / "train")
    assert report["SM_HP_EPOCHS"] == "3" and report["SM_USER_ENTRY_POINT"] == "report.py"
    assert json.loads(report["SM_FRAMEWORK_PARAMS"]) == {"sagemaker_program": "report.py"}
    assert "hello from the user script" in capfd.readouterr().out


def test_a_failing_user_script_reports_its_exit_code_and_stderr_tail(base, capsys):
    failing = "import sys\n" + "".join(f"print('line {i}', file=sys.stderr)\n" for i in range(30)) + "sys.exit(3)\n"
    env = job(base, code={"fail.py": failing})
    with pytest.raises(ExecuteUserScriptError) as info:
        run_user_script(env, "fail.py")
    assert info.value.script_exit_code == 3
    assert info.value.stderr_tail.splitlines() == [f"line {i}" for i in range(10, 30)]  # the last 20 lines
    assert info.value.command == [sys.executable, str(base / "code" / "fail.py")]
    assert "line 0" in capsys.readouterr().err  # stderr streams through as well
