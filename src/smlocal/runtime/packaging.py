"""model.tar.gz / output.tar.gz, written like SageMaker (members at the archive root) and reproducibly,
and safe extraction of archives users hand us (no absolute paths, no '..', no links, no devices)."""
from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Iterable

from smlocal.errors import CustomerError

_CHUNK = 1 << 20


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


def check_member(member: tarfile.TarInfo, archive: str) -> PurePosixPath:
    """The member's safe relative path, or a CustomerError saying why it is refused."""
    name = member.name
    where = f"Archive {archive}: member '{name}'"
    if member.issym() or member.islnk():
        raise CustomerError(f"{where} is a link (to '{member.linkname}'); links are refused for safety. "
                            "Repack the archive with regular files only (tar --dereference).")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise CustomerError(f"{where} is a device or FIFO; only regular files and directories are allowed.")
    if not (member.isfile() or member.isdir()):
        raise CustomerError(f"{where} has an unsupported type; only regular files and directories are allowed.")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or name.startswith("\\"):
        raise CustomerError(f"{where} has an absolute path; members must be relative to the archive root.")
    path = PurePosixPath(name.replace("\\", "/"))
    if ".." in path.parts:
        raise CustomerError(f"{where} contains '..' and would be written outside the target directory.")
    return path


def safe_extract(archive: Path, target: Path) -> list[str]:
    """Extract a (gzipped) tar into ``target`` after checking every member; nothing is written if any
    member is refused. Returns the extracted file names."""
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise CustomerError(f"Model archive {archive} does not exist or is not a file.")
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            checked = [(m, check_member(m, str(archive))) for m in members]
            target.mkdir(parents=True, exist_ok=True)
            names = []
            for member, rel in checked:
                dest = target.joinpath(*rel.parts) if rel.parts else target
                if member.isdir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                with open(dest, "wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
                os.chmod(dest, 0o644)
                names.append(rel.as_posix())
            return names
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise CustomerError(f"Archive {archive} is not a valid tar or tar.gz file ({exc}).") from None
