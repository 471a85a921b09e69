"""Linear learner's training state in ``/opt/ml/checkpoints``, for resuming an interrupted job.

The built-in supports checkpoints for managed spot training (SageMaker developer guide, "Linear
Learner Algorithm"): SageMaker copies ``/opt/ml/checkpoints`` to S3 and back when a job restarts.

After every epoch the whole state (all models' parameters, optimizer moments, scaler, per-model
hyperparameters, early-stopping state, best model so far) is written as one ``.npz`` file, atomically
(temp file + rename), so a job killed at any moment leaves either the previous or the new state. A
restarted job with the same hyperparameters resumes after the last saved epoch (``epochs`` may differ:
a job can be extended); a state written for other hyperparameters is ignored (with a log line), never
half-used.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from smlocal.artifacts.files import atomic_write_bytes

STATE_FILE = "linear-learner-state.npz"
FORMAT = 1


# a restarted job may ask for more (or fewer) epochs and still continue the same training
NOT_IDENTIFYING = frozenset({"epochs"})


def fingerprint(hyperparameters: Mapping[str, str]) -> str:
    """Identifies the job configuration a state belongs to (every hyperparameter but ``epochs``)."""
    text = json.dumps({str(k): str(v) for k, v in hyperparameters.items() if k not in NOT_IDENTIFYING},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Checkpoints:
    """Where a job's state is saved, whether saving is on, and the job's ``fingerprint``."""

    directory: Path
    enabled: bool  # the directory exists, i.e. the job was given a checkpoint location
    job_id: str

    @classmethod
    def for_job(cls, directory: Path, hyperparameters: Mapping[str, str]) -> "Checkpoints":
        return cls(directory, directory.is_dir(), fingerprint(hyperparameters))


def state_path(directory: Path) -> Path:
    return Path(directory) / STATE_FILE


def save_state(directory: Path, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Path:
    buf = io.BytesIO()
    payload = {f"a_{k}": np.asarray(v) for k, v in arrays.items()}
    payload["meta"] = np.array(json.dumps({"format": FORMAT, **meta}))
    np.savez(buf, **payload)
    return atomic_write_bytes(state_path(directory), buf.getvalue())


def load_state(directory: Path) -> tuple[dict, dict[str, np.ndarray]] | None:
    """(meta, arrays) of the saved state, or None when there is none or it cannot be read."""
    path = state_path(directory)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k[2:]: np.array(data[k]) for k in data.files if k.startswith("a_")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        return None
    if meta.get("format") != FORMAT:
        return None
    return meta, arrays
