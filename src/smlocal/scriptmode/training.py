"""The script-mode training job: the user's program from /opt/ml/code (or sagemaker_submit_directory).

Selected when ``SAGEMAKER_PROGRAM`` is set or the hyperparameter ``sagemaker_program`` is present. The
program is a ``.py`` script (``python script.py --hp value ...``), a module (``python -m name``) or an
executable. Output streams through; on a non-zero exit the failure file gets the toolkit's
``ExecuteUserScriptError`` text with the tail of stderr, unless the script wrote its own.
"""
from __future__ import annotations

import collections
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from typing import Mapping

from smlocal.archives import safe_extract
from smlocal.arrays import nvidia_smi_count
from smlocal.environment import TrainingEnv
from smlocal.errors import CustomerError, ExecuteUserScriptError
from smlocal.scriptmode.toolkit_env import (decode_value, program_name, split_hyperparameters, to_cmd_args,
                                           toolkit_environment)

log = logging.getLogger("smlocal")
STDERR_TAIL_LINES = 20


def requested_program(env: TrainingEnv, environ: Mapping[str, str] | None = None) -> str | None:
    """The user program's name, or None when the job runs a built-in algorithm."""
    return program_name(env.hyperparameters, os.environ if environ is None else environ)


def stage_code(env: TrainingEnv) -> Path:
    """Put the user's code into /opt/ml/code (from sagemaker_submit_directory when given and code is empty)."""
    code_dir = env.paths.code_dir
    submit = env.hyperparameters.get("sagemaker_submit_directory")
    if submit is None or (code_dir.is_dir() and any(code_dir.iterdir())):
        if not code_dir.is_dir():
            raise CustomerError(f"Script mode needs the user code in {code_dir}, or sagemaker_submit_directory.")
        return code_dir
    location = str(decode_value(submit))
    if location.startswith("s3://"):
        raise CustomerError(f"sagemaker_submit_directory '{location}': S3 locations are not supported inside the "
                            "container; give a local directory or .tar.gz (smlocal's runtime stages it).")
    source = Path(location.removeprefix("file://"))
    code_dir.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, code_dir, dirs_exist_ok=True)
    elif source.is_file() and tarfile.is_tarfile(source):
        safe_extract(source, code_dir)
    else:
        raise CustomerError(f"sagemaker_submit_directory '{location}' is neither a directory nor a .tar.gz archive.")
    return code_dir


def install_requirements(code_dir: Path) -> None:
    requirements = code_dir / "requirements.txt"
    if not requirements.is_file():
        return
    log.info(f"Installing dependencies from {requirements}")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-r", str(requirements)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-STDERR_TAIL_LINES:])
        raise CustomerError(f"InstallRequirementsError: pip could not install {requirements} "
                            f"(exit {proc.returncode}): {tail}")


def command_for(program: str, code_dir: Path, args: list[str]) -> list[str]:
    path = code_dir / program
    if program.endswith(".py"):
        if not path.is_file():
            raise CustomerError(f"The entry point '{program}' was not found in {code_dir}.")
        return [sys.executable, str(path), *args]
    if path.is_file():
        if not os.access(path, os.X_OK):
            path.chmod(path.stat().st_mode | 0o111)
        return [str(path), *args]
    return [sys.executable, "-m", program, *args]


def _stream(pipe, sink, tail: collections.deque) -> None:
    for line in iter(pipe.readline, ""):
        sink.write(line)
        sink.flush()
        tail.append(line.rstrip("\n"))
    pipe.close()


def run_user_script(env: TrainingEnv, program: str) -> None:
    code_dir = stage_code(env)
    install_requirements(code_dir)
    user_hps, _ = split_hyperparameters(env.hyperparameters)
    command = command_for(program, code_dir, to_cmd_args(user_hps))
    script_env = {**os.environ, **toolkit_environment(env, program, str(code_dir), nvidia_smi_count())}
    script_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code_dir), os.environ.get("PYTHONPATH")]))
    log.info(f"Invoking user script: {' '.join(command)}")
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    proc = subprocess.Popen(command, cwd=code_dir, env=script_env, stdout=None, stderr=subprocess.PIPE, text=True)
    reader = threading.Thread(target=_stream, args=(proc.stderr, sys.stderr, tail), daemon=True)
    reader.start()
    code = proc.wait()
    reader.join()
    if code != 0:
        raise ExecuteUserScriptError(code, "\n".join(tail), command)
    log.info("Reporting training SUCCESS")
