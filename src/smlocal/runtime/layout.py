"""The executor of a host's plan on disk: its /opt/ml tree laid out (the one step both backends share)."""
from __future__ import annotations

import os
from pathlib import Path

from smlocal.errors import CustomerError
from smlocal.runtime.pipes import GZIP_HINT, open_source, read_object
from smlocal.runtime.plan import DataObject, HostPlan, Mount

GZIP_MAGIC = b"\x1f\x8b"


def materialize(host: HostPlan, mounts_as: str) -> None:
    """Create the host's directories and config files.

    ``mounts_as="symlink"`` (local processes): each mount becomes a symlink to its source.
    ``mounts_as="mountpoint"`` (Docker): an empty directory or file owned by us is left where Docker
    will bind-mount, so Docker does not create root-owned mountpoints inside our tree.
    ``host.placed`` files are hard-linked (or copied) in place either way; ``host.gunzipped`` files are
    written decompressed.
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
    for item in host.gunzipped:
        gunzip(item, root / item.target)


def gunzip(item: Mount, dest: Path) -> None:
    """Write ``item.source`` decompressed at ``dest``, streamed (memory stays one chunk). A file that
    is not gzip is refused before anything is written; one that breaks off midway leaves no file."""
    obj = DataObject(dest.name, item.source)
    with open_source(obj) as f:
        magic = f.read(len(GZIP_MAGIC))
    if magic != GZIP_MAGIC:
        raise CustomerError(f"File '{item.source}' of a CompressionType=Gzip channel is not a gzip file. {GZIP_HINT}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    try:
        with open(partial, "wb") as out:
            for data in read_object(obj, "Gzip"):  # the Pipe feeder's reader: one gzip error for both
                out.write(data)
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
