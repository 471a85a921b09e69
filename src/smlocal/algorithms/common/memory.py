"""How much memory a job's fixed arrays need, checked against the host's before they are allocated.

A ``feature_dim`` far beyond the data (1e9 for sparse data, say) would otherwise end in a
``MemoryError`` reported as an Algorithm Error; it is the customer's setting, so it is refused as one.
"""
from __future__ import annotations

import os

from smlocal.errors import CustomerError

MEMORY_ENV = "SMLOCAL_MEMORY_BYTES"  # overrides the host's available memory (a container's limit, tests)


def available_memory() -> int:
    """Bytes this host can still give: ``SMLOCAL_MEMORY_BYTES``, else MemAvailable, else all RAM."""
    raw = os.environ.get(MEMORY_ENV, "").strip()
    if raw:
        try:
            return int(float(raw))
        except ValueError:
            raise CustomerError(f"{MEMORY_ENV}='{raw}' is not a number of bytes.") from None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def gib(size: float) -> str:
    return f"{size / 2 ** 30:,.1f} GiB"


def check_memory(need: int, what: str, advice: str) -> None:
    """CustomerError when ``need`` bytes (for ``what``, the settings behind the figure) exceed the host's."""
    have = available_memory()
    if need > have:
        raise CustomerError(f"{what} need about {gib(need)} of memory, more than the {gib(have)} available "
                            f"on this host. {advice}")
