"""The array-module seam: numpy on CPU, CuPy on a GPU, chosen once per job.

Algorithms take an ``ArrayModule`` and write their math against ``arrays.xp``; they never test for
a GPU themselves. ``to_host``/``to_device`` move arrays across the boundary; ``to_numpy`` brings any
numpy or CuPy array to the host where no array module is at hand.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import numpy as np

from smlocal.errors import CustomerError


@dataclass(frozen=True)
class ArrayModule:
    xp: Any  # numpy or cupy
    name: str  # "numpy" | "cupy"
    num_gpus: int = 0

    @property
    def is_gpu(self) -> bool:
        return self.num_gpus > 0

    def to_device(self, array: Any) -> Any:
        """A host array on the device; a scipy CSR matrix stays sparse (cupyx's CSR on a GPU)."""
        import scipy.sparse as sp  # here: script mode imports this module only for nvidia_smi_count

        if sp.issparse(array):
            if self.name == "cupy":
                import cupyx.scipy.sparse as cusparse

                return cusparse.csr_matrix(array)
            return array
        return self.xp.asarray(array)

    def to_host(self, array: Any) -> np.ndarray:
        return to_numpy(array)

    def device_free_bytes(self) -> int | None:
        """Free memory of the GPU in use (None on the CPU)."""
        if self.name != "cupy":
            return None
        free, _total = self.xp.cuda.Device().mem_info
        return int(free)


def to_numpy(array: Any) -> np.ndarray:
    """A numpy or CuPy array as a numpy array (CuPy's is copied to the host, numpy's returned as is)."""
    return np.asarray(array.get() if hasattr(array, "get") else array)


CPU = ArrayModule(np, "numpy", 0)


def detected_gpus() -> int:
    """GPUs usable through CuPy (0 when CuPy or a device is missing)."""
    try:
        import cupy  # noqa: F401  (optional: only on GPU images)

        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # noqa: BLE001 - any CuPy/driver failure means no usable GPU
        return 0


def nvidia_smi_count() -> int:
    """What ``nvidia-smi -L`` lists, as the built-ins log it (0 without the tool)."""
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def select_array_module(num_gpus: int | str = "auto") -> ArrayModule:
    """``_num_gpus``: ``auto`` = use a GPU when one is detected; an int = min(requested, detected).

    Like the built-ins, at most one GPU is used per host.
    """
    available = detected_gpus()
    if num_gpus == "auto":
        wanted = available
    else:
        wanted = int(num_gpus)
        if wanted < 0:
            raise CustomerError(f"The value '{num_gpus}' is not valid for the '_num_gpus' hyperparameter which accepts "
                                "an integer >= 0 or 'auto'")
        wanted = min(wanted, available)
    if wanted <= 0:
        return CPU
    import cupy

    return ArrayModule(cupy, "cupy", 1)
