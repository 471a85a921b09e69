"""Shared test helpers: lay out a temporary /opt/ml tree and run the container entry points on it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONTAINER = REPO / "container"
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "aws-builtin"


@dataclass
class TrainResult:
    returncode: int
    stdout: str
    stderr: str
    base: Path

    @property
    def failure(self) -> str | None:
        path = self.base / "output" / "failure"
        return path.read_text() if path.exists() else None

    def model_file(self, host: str = "algo-1") -> Path:
        return self.base / "model" / f"model_{host}"


def write_config(base: Path, hyperparameters: dict, channels: dict, hosts=("algo-1",), current="algo-1") -> None:
    """Write the three config files. ``channels``: name -> inputdataconfig entry (dict)."""
    cfg = base / "input" / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    (base / "model").mkdir(parents=True, exist_ok=True)
    (base / "output" / "data").mkdir(parents=True, exist_ok=True)
    (cfg / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in hyperparameters.items()}))
    (cfg / "inputdataconfig.json").write_text(json.dumps(channels))
    (cfg / "resourceconfig.json").write_text(
        json.dumps({"current_host": current, "hosts": list(hosts), "network_interface_name": "eth0"})
    )


def run_container(command: str, base: Path, algorithm: str = "kmeans", env: dict | None = None,
                  timeout: float = 300, **popen) -> TrainResult:
    """Run ``container/<command>`` as a subprocess against ``base`` (SAGEMAKER_BASE_DIR)."""
    full_env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SMLOCAL_ALGORITHM": algorithm, **(env or {})}
    proc = subprocess.run([sys.executable, str(CONTAINER / command)], env=full_env, capture_output=True,
                          text=True, timeout=timeout, **popen)
    return TrainResult(proc.returncode, proc.stdout, proc.stderr, base)
