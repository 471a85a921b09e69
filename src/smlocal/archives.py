"""Safe extraction of archives users hand us (model.tar.gz, sourcedir.tar.gz), on both sides.

Every member is checked before anything is written: no absolute paths, no '..', no links, no devices.
"""
from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from smlocal.errors import CustomerError

_CHUNK = 1 << 20


def check_member(member: tarfile.TarInfo, archive: str,
                 error: type[CustomerError] = CustomerError) -> PurePosixPath:
    """The member's safe relative path, or ``error`` saying why it is refused."""
    name = member.name
    where = f"Archive {archive}: member '{name}'"
    if member.issym() or member.islnk():
        raise error(f"{where} is a link (to '{member.linkname}'); links are refused for safety. "
                    "Repack the archive with regular files only (tar --dereference).")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise error(f"{where} is a device or FIFO; only regular files and directories are allowed.")
    if not (member.isfile() or member.isdir()):
        raise error(f"{where} has an unsupported type; only regular files and directories are allowed.")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or name.startswith("\\"):
        raise error(f"{where} has an absolute path; members must be relative to the archive root.")
    path = PurePosixPath(name.replace("\\", "/"))
    if ".." in path.parts:
        raise error(f"{where} contains '..' and would be written outside the target directory.")
    return path


def safe_extract(archive: Path, target: Path) -> list[str]:
    """Extract a (gzipped) tar into ``target`` after checking every member; nothing is written if any
    member is refused. Returns the extracted file names."""
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise CustomerError(f"Archive {archive} does not exist or is not a file.")
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
