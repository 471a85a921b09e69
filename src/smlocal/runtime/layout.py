"""The executor of a host's plan on disk: its /opt/ml tree laid out (the one step both backends share)."""
from __future__ import annotations

import os
from pathlib import Path

from smlocal.runtime.plan import HostPlan


def materialize(host: HostPlan, mounts_as: str) -> None:
    """Create the host's directories and config files.

    ``mounts_as="symlink"`` (local processes): each mount becomes a symlink to its source.
    ``mounts_as="mountpoint"`` (Docker): an empty directory or file owned by us is left where Docker
    will bind-mount, so Docker does not create root-owned mountpoints inside our tree.
    ``host.placed`` files are hard-linked (or copied) in place either way.
    """
    root = host.paths.base
    for rel in host.dirs:
        (root / rel).mkdir(parents=True, exist_ok=True)
    for rel, text in host.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for mount in host.mounts:
        target = root / mount.target
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            continue
        if mounts_as == "symlink":
            os.symlink(mount.source, target, target_is_directory=Path(mount.source).is_dir())
        elif Path(mount.source).is_dir():
            target.mkdir()
        else:
            target.touch()
    if host.placed:
        from smlocal.runtime.s3.cache import place

        for item in host.placed:  # real files (hard links into the S3 cache), for either backend
            place(Path(item.source), root / item.target)
