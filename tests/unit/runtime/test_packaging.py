"""model.tar.gz like SageMaker's (root members, reproducible) and safe extraction."""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time

import pytest

from smlocal.errors import CustomerError
from smlocal.archives import safe_extract
from smlocal.runtime.packaging import collect_files, package_dirs


def _tree(root, files):
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_members_at_root_and_deterministic(tmp_path):
    h1 = _tree(tmp_path / "h1", {"model_algo-1": b"\x01" * 100, "sub/extra.json": b"{}"})
    h2 = _tree(tmp_path / "h2", {"model_algo-1": b"other", "model_algo-2": b"two"})
    a = package_dirs(tmp_path / "a" / "model.tar.gz", [h1, h2])
    os.utime(h1 / "model_algo-1", (time.time() + 1000, time.time() + 1000))  # mtimes do not matter
    b = package_dirs(tmp_path / "b" / "model.tar.gz", [h1, h2])
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    with tarfile.open(a) as tar:
        names = tar.getnames()
        assert names == ["sub", "model_algo-1", "model_algo-2", "sub/extra.json"]
        for m in tar.getmembers():
            assert (m.mtime, m.uid, m.gid) == (0, 0, 0)
            assert m.mode == (0o755 if m.isdir() else 0o644)
        assert tar.extractfile("model_algo-1").read() == b"\x01" * 100  # the first host wins a clash
        assert tar.extractfile("model_algo-2").read() == b"two"
    assert a.read_bytes()[4:8] == b"\0\0\0\0"  # no timestamp in the gzip header


def test_empty_dirs_give_an_empty_archive(tmp_path):
    out = package_dirs(tmp_path / "output.tar.gz", [tmp_path / "missing"])
    with tarfile.open(out) as tar:
        assert tar.getnames() == []
    assert collect_files([tmp_path / "missing"]) == {}


def test_round_trip(tmp_path):
    src = _tree(tmp_path / "m", {"model_algo-1": os.urandom(5000), "a/b/c.txt": b"c"})
    archive = package_dirs(tmp_path / "model.tar.gz", [src])
    names = safe_extract(archive, tmp_path / "x")
    assert sorted(names) == ["a/b/c.txt", "model_algo-1"]
    assert (tmp_path / "x" / "model_algo-1").read_bytes() == (src / "model_algo-1").read_bytes()


def _bad_archive(path, member: tarfile.TarInfo, data: bytes = b""):
    with tarfile.open(path, "w:gz") as tar:
        good = tarfile.TarInfo("model_algo-1")
        good.size = 3
        tar.addfile(good, io.BytesIO(b"abc"))
        tar.addfile(member, io.BytesIO(data) if data else None)
    return path


def _member(name, kind=tarfile.REGTYPE, size=0, link=""):
    m = tarfile.TarInfo(name)
    m.type, m.size, m.linkname = kind, size, link
    return m


@pytest.mark.parametrize("member, data, words", [
    (_member("/etc/evil", size=1), b"x", "absolute"),
    (_member("../evil", size=1), b"x", "'..'"),
    (_member("a/../../evil", size=1), b"x", "'..'"),
    (_member("link", tarfile.SYMTYPE, link="/etc/passwd"), b"", "link"),
    (_member("hard", tarfile.LNKTYPE, link="model_algo-1"), b"", "link"),
    (_member("dev", tarfile.CHRTYPE), b"", "device"),
    (_member("blk", tarfile.BLKTYPE), b"", "device"),
    (_member("fifo", tarfile.FIFOTYPE), b"", "FIFO"),
])
def test_unsafe_members_are_refused(tmp_path, member, data, words):
    archive = _bad_archive(tmp_path / "bad.tar.gz", member, data)
    target = tmp_path / "out"
    with pytest.raises(CustomerError) as info:
        safe_extract(archive, target)
    assert words in str(info.value) and member.name in str(info.value) and "bad.tar.gz" in str(info.value)
    assert not target.exists()  # checked before anything is written
    assert not (tmp_path / "evil").exists()


def test_not_an_archive(tmp_path):
    junk = tmp_path / "model.tar.gz"
    junk.write_bytes(b"definitely not gzip")
    with pytest.raises(CustomerError, match="not a valid tar"):
        safe_extract(junk, tmp_path / "out")
    with pytest.raises(CustomerError, match="does not exist"):
        safe_extract(tmp_path / "nope.tar.gz", tmp_path / "out")
