"""Which kernels numpy's OpenBLAS runs on CPUs newer than that OpenBLAS.

numpy 1.23 (pinned by MXNet 1.9.1) bundles OpenBLAS 0.3.20, which predates AMD's AVX-512 CPUs (Zen 4,
e.g. SageMaker's m7a/c7a/r7a instances): it takes them for older Zen parts and runs its AVX2 kernels.
scipy's newer OpenBLAS (0.3.27) picks AVX-512 kernels on the same CPU; with 0.3.20's AVX-512
"SkylakeX" kernels numpy's float32 products ran 20-25 % faster (5000 x 51 by 51 x 100: 0.71 ms
against 0.57 ms a product) and gave correct results in every check (``tests/unit/test_blas_kernel.py``).
0.3.20 does not know the name "Cooperlake": given it, it fell back to kernels whose float64 products
were wrong on a Zen 4 CPU, so SkylakeX is the one choice made.

OpenBLAS reads ``OPENBLAS_CORETYPE`` once, when the library loads, so the choice is made in the
entry points before anything imports numpy, for the job's process and every process it starts. A value
the user set is kept; Intel CPUs, where 0.3.20 already finds its AVX-512 kernels, are left alone.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import MutableMapping

CORETYPE_ENV = "OPENBLAS_CORETYPE"
CPUINFO = Path("/proc/cpuinfo")
# what OpenBLAS's SkylakeX kernels need
AVX512 = frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})


def cpu_identity(cpuinfo_text: str) -> tuple[str, frozenset[str]]:
    """(vendor id, flags) of the first processor listed in /proc/cpuinfo's text."""
    vendor, flags = "", frozenset()
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "vendor_id" and not vendor:
            vendor = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
        if vendor and flags:
            break
    return vendor, flags


def preferred_coretype(vendor: str, flags: frozenset[str]) -> str | None:
    """AVX-512 kernels for an AMD CPU that has AVX-512 (None: let OpenBLAS detect)."""
    if vendor != "AuthenticAMD" or not AVX512 <= flags:
        return None
    return "SkylakeX"


def choose_openblas_kernel(environ: MutableMapping[str, str] | None = None,
                           cpuinfo: Path = CPUINFO) -> str | None:
    """Set ``OPENBLAS_CORETYPE`` in ``environ`` (default ``os.environ``) when this CPU wants it and it is
    unset; returns the value in force (None: OpenBLAS detects). Takes effect for libraries loaded after."""
    env = os.environ if environ is None else environ
    if env.get(CORETYPE_ENV):
        return env[CORETYPE_ENV]
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:  # not Linux, or no /proc: OpenBLAS detects as usual
        return None
    choice = preferred_coretype(*cpu_identity(text))
    if choice is not None:
        env[CORETYPE_ENV] = choice
    return choice
