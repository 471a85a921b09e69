"""Where a job's checkpoint goes and whether it is on (the state format: test_state.py)."""
from __future__ import annotations

from smlocal.algorithms.linear_learner.checkpoint import STATE_FILE, Checkpoints, fingerprint, state_path


def test_checkpoints_are_on_only_when_the_directory_exists(tmp_path):
    hps = {"predictor_type": "regressor", "epochs": "3"}
    off = Checkpoints.for_job(tmp_path / "checkpoints", hps)
    assert not off.enabled and off.job_id == fingerprint(hps)
    (tmp_path / "checkpoints").mkdir()
    on = Checkpoints.for_job(tmp_path / "checkpoints", hps)
    assert on.enabled and state_path(on.directory) == tmp_path / "checkpoints" / STATE_FILE

