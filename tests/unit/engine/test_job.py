"""The engine job's spec: read from the environment or a mounted file, checked against the engine's nodes."""
from __future__ import annotations

import json

import pytest

from smlocal.algorithms.cluster.discovery import Placement
from smlocal.engine.job import engine_spec, job_body
from smlocal.errors import CustomerError
from tests.helpers import job_channel, training_job

NODES = Placement(current_host="algo-1", hosts=("algo-1", "algo-2"), engine="batch")


def _body(tmp_path, **changes):
    body = training_job("eng", [job_channel("train", tmp_path)], tmp_path, image="smlocal", count=2,
                        Environment={"SMLOCAL_ALGORITHM": "kmeans"})
    body.update(changes)
    return body


def test_the_spec_comes_from_the_variable_or_the_file(tmp_path):
    body = _body(tmp_path)
    (tmp_path / "job.json").write_text(json.dumps(body))
    assert job_body({"SMLOCAL_JOB_SPEC": json.dumps(body)}) == body
    assert job_body({"SMLOCAL_JOB_SPEC_FILE": str(tmp_path / "job.json")}) == body
    assert job_body({}) is None
    with pytest.raises(CustomerError, match="SMLOCAL_JOB_SPEC_FILE .*missing.json"):
        job_body({"SMLOCAL_JOB_SPEC_FILE": str(tmp_path / "missing.json")})
    with pytest.raises(CustomerError, match="SMLOCAL_JOB_SPEC is not valid JSON"):
        job_body({"SMLOCAL_JOB_SPEC": "{"})


def test_the_spec_must_agree_with_the_engine(tmp_path):
    assert engine_spec(_body(tmp_path), NODES).instance_count == 2
    with pytest.raises(CustomerError, match="InstanceCount=3 contradicts the 2 node"):
        engine_spec(_body(tmp_path, ResourceConfig={"InstanceCount": 3}), NODES)
    with pytest.raises(CustomerError, match="TrainingJobName"):
        engine_spec({k: v for k, v in _body(tmp_path).items() if k != "TrainingJobName"}, NODES)
    with pytest.raises(CustomerError, match="Pipe mode"):
        engine_spec(_body(tmp_path, AlgorithmSpecification={"TrainingImage": "smlocal", "TrainingInputMode": "Pipe"}),
                    NODES)
