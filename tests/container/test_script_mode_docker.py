"""Script mode through the docker backend: the scikit-learn example trains in the image from
--entry-point/--source-dir, and its model.tar.gz with code/inference.py is served by the image."""
from __future__ import annotations

import io
import tarfile

import pytest

from smlocal.runtime import docker as docker_backend
from smlocal.runtime.endpoint import Endpoint
from smlocal.runtime.jobs import run_training
from smlocal.runtime.jobflags import spec_from_flags
from smlocal.runtime.progress import Display
from tests.helpers import REPO

pytestmark = pytest.mark.container
EXAMPLE = REPO / "examples" / "sklearn"


def test_sklearn_script_trains_and_serves_in_the_image(smlocal_image, tmp_path):
    spec = spec_from_flags(algorithm=None, image=smlocal_image, channels=[f"train={EXAMPLE / 'data'}"],
                           content_types=["train=text/csv"], hyperparameters=["C=0.5"],
                           output=str(tmp_path / "out"), job_name="sk-docker",
                           entry_point="train.py", source_dir=str(EXAMPLE))
    result = run_training(spec, docker_backend.DockerBackend(smlocal_image), Display(live=False, stream=io.StringIO()))
    assert result.status == "Completed", result.failure_reason
    log = (tmp_path / "out" / "sk-docker" / "logs" / "algo-1.log").read_text()
    assert "Invoking user script:" in log and "--C 0.5" in log and "training accuracy:" in log

    repacked = tmp_path / "model.tar.gz"
    with tarfile.open(result.model_artifacts) as src, tarfile.open(repacked, "w:gz") as dst:
        assert src.getnames() == ["model.joblib"]
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member))
        dst.add(EXAMPLE / "inference.py", arcname="code/inference.py")
    with Endpoint(repacked, docker_backend.DockerBackend(smlocal_image), workers=1) as ep:
        ok = ep.invoke(b"3,-3,0\n-3,3,0\n", "text/csv", "application/json")
        assert ok.status == 200, ok.text()
        probabilities = ok.json()["probabilities"]
        assert probabilities[0] > 0.9 and probabilities[1] < 0.1
        bad = ep.invoke(b'{"x": 1}', "application/json", "application/json")
        assert bad.status == 500 and "this model takes text/csv" in bad.text()
        assert ep.invoke(b"3,-3,0\n", "text/csv", "application/json").status == 200


def test_failing_script_in_the_image_reports_its_stderr(smlocal_image, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "fail.py").write_text("import sys\nsys.stderr.write('ValueError: no label column\\n')\nsys.exit(4)\n")
    spec = spec_from_flags(algorithm=None, image=smlocal_image, channels=[], output=str(tmp_path / "out"),
                           job_name="sk-fail", entry_point="fail.py", source_dir=str(code))
    result = run_training(spec, docker_backend.DockerBackend(smlocal_image), Display(live=False, stream=io.StringIO()))
    assert result.status == "Failed"
    assert result.failure_reason.startswith("ExecuteUserScriptError:\nExitCode 4")
    assert "ValueError: no label column" in result.failure_reason
