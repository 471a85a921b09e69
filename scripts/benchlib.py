"""What the benchmark scripts share: a process's own memory figures."""
from __future__ import annotations

import resource
from pathlib import Path


def rss_mb(field: str = "VmHWM") -> float:
    """This process's RSS at its peak (VmHWM) or now (VmRSS), in MB. VmHWM, not ru_maxrss: Linux carries
    ru_maxrss over fork+exec, so a child of a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
