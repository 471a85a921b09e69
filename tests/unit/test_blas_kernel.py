"""The OpenBLAS kernel choice: which CPUs get one, that a user's value wins, and that numpy's products
are right and on the chosen kernels in a process that made the choice before loading numpy."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from smlocal.blas_kernel import CORETYPE_ENV, choose_openblas_kernel, cpu_identity, preferred_coretype

ZEN4_FLAGS = "fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512vnni"
CPUINFO = """processor\t: 0
vendor_id\t: {vendor}
model name\t: {model}
flags\t\t: {flags}

processor\t: 1
vendor_id\t: {vendor}
flags\t\t: {flags}
"""


def _cpuinfo(tmp_path, vendor="AuthenticAMD", model="AMD EPYC 9R14", flags=ZEN4_FLAGS):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.format(vendor=vendor, model=model, flags=flags))
    return path


def test_cpu_identity_reads_the_first_processor():
    vendor, flags = cpu_identity(CPUINFO.format(vendor="AuthenticAMD", model="x", flags="avx2 avx512f"))
    assert vendor == "AuthenticAMD" and flags == {"avx2", "avx512f"}


@pytest.mark.parametrize("vendor, flags, expected", [
    ("AuthenticAMD", ZEN4_FLAGS, "SkylakeX"),  # Zen 4: 0.3.20 would run its AVX2 kernels
    ("AuthenticAMD", ZEN4_FLAGS.replace(" avx512_bf16", ""), "SkylakeX"),
    ("AuthenticAMD", "fpu sse2 avx avx2 fma", None),  # Zen 3 and older: no AVX-512 to use
    ("AuthenticAMD", "avx2 avx512f", None),  # not every extension the kernels need
    ("GenuineIntel", ZEN4_FLAGS, None),  # 0.3.20 detects Intel's AVX-512 itself
])
def test_only_amd_cpus_with_avx512_get_a_kernel(vendor, flags, expected):
    assert preferred_coretype(vendor, frozenset(flags.split())) == expected


def test_the_choice_is_set_for_the_process_and_a_users_value_wins(tmp_path):
    env: dict[str, str] = {}
    assert choose_openblas_kernel(env, _cpuinfo(tmp_path)) == "SkylakeX"
    assert env == {CORETYPE_ENV: "SkylakeX"}
    mine = {CORETYPE_ENV: "Haswell"}
    assert choose_openblas_kernel(mine, _cpuinfo(tmp_path)) == "Haswell" and mine == {CORETYPE_ENV: "Haswell"}
    intel: dict[str, str] = {}
    assert choose_openblas_kernel(intel, _cpuinfo(tmp_path, vendor="GenuineIntel")) is None and intel == {}
    assert choose_openblas_kernel({}, tmp_path / "missing") is None  # no /proc: OpenBLAS detects


CHILD = """
import json
from smlocal.blas_kernel import choose_openblas_kernel
kernel = choose_openblas_kernel()
import numpy as np
from threadpoolctl import threadpool_info
rng = np.random.default_rng(0)
worst = 0.0
for dtype in (np.float32, np.float64):
    for m, k, n in [(5000, 51, 100), (131, 51, 1000), (1000, 50, 10), (7, 3, 5), (257, 129, 65)]:
        a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
        ref = np.einsum("ik,kj->ij", a.astype(np.longdouble), b.astype(np.longdouble))
        worst = max(worst, float(np.abs(a @ b - ref).max() / np.abs(ref).max()) / np.finfo(dtype).eps)
        worst = max(worst, float(np.abs(a.T.T @ b[:, 0] - ref[:, 0]).max() / np.abs(ref).max()) / np.finfo(dtype).eps)
arch = [i.get("architecture") for i in threadpool_info() if "numpy" in i["filepath"]]
print(json.dumps({"kernel": kernel, "arch": arch, "worst_eps": worst}))
"""


def test_numpys_products_are_right_on_the_kernels_this_cpu_gets():
    """Runs where the suite runs: on a Zen 4 host this loads numpy on the SkylakeX kernels (and would catch
    a wrong product, as "Cooperlake" gave on 0.3.20); elsewhere on what OpenBLAS detects."""
    env = {k: v for k, v in os.environ.items() if k != CORETYPE_ENV}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120,
                         check=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    if got["kernel"] is not None and got["arch"]:
        assert got["arch"] == [got["kernel"]]
    assert got["worst_eps"] < 200, got  # a relative error of a few hundred ulps at most, for sums of <= 129 terms
