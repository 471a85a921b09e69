"""Safe intake of the trees users hand us: archives (model.tar.gz, sourcedir.tar.gz), on both sides, and
model directories.

Every member is checked before anything is written: no absolute paths, no '..', no links, no devices,
and the headers' total size and member count stay within limits (an archive of 1 MB can hold 1 GiB of
zeros), raised with ``SMLOCAL_ARCHIVE_MAX_BYTES`` / ``SMLOCAL_ARCHIVE_MAX_MEMBERS``. A model directory
is copied with its symbolic links followed (as SageMaker packs them), after a walk that refuses a link
loop or a dangling link by name.
"""
from __future__ import annotations

import gzip
import os
import shutil
import stat
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Mapping

from smlocal.environment import positive_number
from smlocal.errors import CustomerError
from smlocal.runtime.progress import human_bytes

_CHUNK = 1 << 20
MAX_BYTES_ENV = "SMLOCAL_ARCHIVE_MAX_BYTES"
MAX_MEMBERS_ENV = "SMLOCAL_ARCHIVE_MAX_MEMBERS"
DEFAULT_MAX_BYTES = 10 << 30
DEFAULT_MAX_MEMBERS = 10_000
_WHOLE = "a positive whole number"


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


def checked_members(tar: tarfile.TarFile, archive: str, error: type[CustomerError] = CustomerError,
                    env: Mapping[str, str] | None = None) -> list[tuple[tarfile.TarInfo, PurePosixPath]]:
    """Every member with its safe relative path, read header by header: an unsafe member, or a total
    size or member count over the limits, raises ``error`` at that header, before its data is read."""
    env = os.environ if env is None else env
    max_bytes = positive_number(env, MAX_BYTES_ENV, DEFAULT_MAX_BYTES, kind=int, what=_WHOLE, error=error)
    max_members = positive_number(env, MAX_MEMBERS_ENV, DEFAULT_MAX_MEMBERS, kind=int, what=_WHOLE,
                                  error=error)
    checked, total = [], 0
    while (member := tar.next()) is not None:
        if len(checked) == max_members:
            raise error(f"Archive {archive} has more than {max_members} members. If it is meant to, raise the "
                        f"limit with {MAX_MEMBERS_ENV}.")
        checked.append((member, check_member(member, archive, error)))
        total += member.size if member.isfile() else 0
        if total > max_bytes:
            raise error(f"Archive {archive}: member '{member.name}' brings its content to {human_bytes(total)}, "
                        f"over the limit of {human_bytes(max_bytes)}. If it is meant to, raise the limit with "
                        f"{MAX_BYTES_ENV} (bytes).")
    return checked


def _check_space(archive: Path, target: Path, needed: int) -> None:
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed > free:
        raise CustomerError(f"Archive {archive} holds {human_bytes(needed)}, more than the {human_bytes(free)} "
                            f"free where it is to be extracted ({target}).")


def safe_extract(archive: Path, target: Path) -> list[str]:
    """Extract a (gzipped) tar into ``target`` after checking every member; nothing is written if any
    member is refused. Returns the extracted file names."""
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise CustomerError(f"Archive {archive} does not exist or is not a file.")
    try:
        with tarfile.open(archive, "r:*") as tar:
            checked = checked_members(tar, str(archive))
            _check_space(archive, target, sum(m.size for m, _ in checked if m.isfile()))
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


def copy_model_dir(source: Path, target: Path) -> None:
    """Copy a model directory to ``target``, following symbolic links; a link that loops or leads nowhere
    is a ``CustomerError`` naming it, raised before anything is copied."""
    source = Path(source)
    _check_links(source, source, frozenset())
    shutil.copytree(source, target)


def _check_links(root: Path, directory: Path, ancestors: frozenset) -> None:
    info = directory.stat()
    here = ancestors | {(info.st_dev, info.st_ino)}
    with os.scandir(directory) as entries:
        for entry in entries:
            path = Path(entry.path)
            try:
                info = entry.stat()  # follows the link
            except OSError as exc:
                raise CustomerError(f"Model directory {root}: '{path.relative_to(root)}' is a symbolic link that "
                                    f"loops or leads nowhere ({exc.strerror}). Remove it or point it at a file.") \
                    from None
            if not stat.S_ISDIR(info.st_mode):
                continue
            if (info.st_dev, info.st_ino) in here:
                raise CustomerError(f"Model directory {root}: '{path.relative_to(root)}' is a symbolic link loop: "
                                    "it leads back to a directory that contains it. Remove it.")
            _check_links(root, path, here)
