"""model.tar.gz / output.tar.gz, written like SageMaker (members at the archive root) and reproducibly.

Safe extraction of archives users hand us lives in ``smlocal.archives`` (the container side needs it too)."""
from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path, PurePosixPath
from typing import Iterable


def collect_files(dirs: Iterable[Path]) -> dict[str, Path]:
    """Relative POSIX name -> file, merged over ``dirs``; on a name clash the first directory wins
    (hosts are passed in order, so algo-1's file is kept). Symlinks are followed, as SageMaker does."""
    members: dict[str, Path] = {}
    for root in dirs:
        root = Path(root)
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file():
                members.setdefault(path.relative_to(root).as_posix(), path)
    return members


def write_tar_gz(target: Path, members: dict[str, Path]) -> Path:
    """Write ``members`` (archive name -> file) as a deterministic tar.gz: sorted names, mtime 0,
    uid/gid 0, mode 0644 (0755 for directories), gzip header without a timestamp. Atomic."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    dirs = sorted({str(p) for name in members for p in PurePosixPath(name).parents if str(p) != "."})
    try:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in dirs:
                tar.addfile(_info(name, tarfile.DIRTYPE, 0, 0o755))
            for name in sorted(members):
                path = members[name]
                size = path.stat().st_size
                with open(path, "rb") as f:
                    tar.addfile(_info(name, tarfile.REGTYPE, size, 0o644), f)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def _info(name: str, kind: bytes, size: int, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = kind, size, mode
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def package_dirs(target: Path, dirs: Iterable[Path]) -> Path:
    return write_tar_gz(target, collect_files(dirs))
