"""Archive extraction limits: total size and member count are checked from the headers, before anything
is written, and both can be raised by environment variable."""
from __future__ import annotations

import gzip
import os
import tarfile

import pytest

from smlocal.archives import MAX_BYTES_ENV, MAX_MEMBERS_ENV, copy_model_dir, safe_extract
from smlocal.artifacts.loader import load_model_dir
from smlocal.errors import CustomerError, ModelLoadError
from tests.datasets import many_members_tar_gz, zeros_tar_gz

GIB = 1 << 30


@pytest.fixture(scope="module")
def gib_archive(tmp_path_factory):
    """~1 MB on disk, one 1 GiB member."""
    return zeros_tar_gz(tmp_path_factory.mktemp("bomb") / "model.tar.gz", "model_algo-1", GIB)


@pytest.fixture(scope="module")
def crowded_archive(tmp_path_factory):
    return many_members_tar_gz(tmp_path_factory.mktemp("crowd") / "model.tar.gz", 20_000)


def test_the_bomb_is_small_on_disk_and_real(gib_archive):
    assert gib_archive.stat().st_size < 2 * (1 << 20)
    with tarfile.open(gib_archive) as tar:
        assert tar.next().size == GIB


def test_a_member_larger_than_the_limit_is_refused_before_writing(gib_archive, tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_BYTES_ENV, str(256 << 20))
    target = tmp_path / "out"
    with pytest.raises(CustomerError) as info:
        safe_extract(gib_archive, target)
    message = str(info.value)
    assert "model.tar.gz" in message and "model_algo-1" in message and MAX_BYTES_ENV in message
    assert "1.0 GB" in message
    assert not target.exists()  # refused from the headers: nothing was written


def test_a_header_claiming_a_huge_size_is_refused_at_once_by_default(tmp_path):
    """A header claiming 1 TiB with only 1 MiB of data behind it: refused from the header alone (no
    attempt to read or seek past the data)."""
    info = tarfile.TarInfo("model_algo-1")
    info.size = 1 << 40
    archive = tmp_path / "liar.tar.gz"
    archive.write_bytes(gzip.compress(info.tobuf(format=tarfile.PAX_FORMAT) + bytes(1 << 20)))
    with pytest.raises(CustomerError, match=MAX_BYTES_ENV):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_too_many_members_are_refused_and_the_limit_can_be_raised(crowded_archive, tmp_path, monkeypatch):
    with pytest.raises(CustomerError) as info:
        safe_extract(crowded_archive, tmp_path / "out")
    assert MAX_MEMBERS_ENV in str(info.value) and "members" in str(info.value)
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv(MAX_MEMBERS_ENV, "25000")
    names = safe_extract(crowded_archive, tmp_path / "out")
    assert len(names) == 20_000 and len(os.listdir(tmp_path / "out")) == 20_000


def test_a_bad_override_is_a_clear_error(crowded_archive, tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_MEMBERS_ENV, "lots")
    with pytest.raises(CustomerError, match=f"{MAX_MEMBERS_ENV}.*'lots'"):
        safe_extract(crowded_archive, tmp_path / "out")


def test_the_model_loader_applies_the_same_limits(gib_archive, tmp_path, monkeypatch):
    """serve reads a model.tar.gz in the model directory in memory: the limit keeps 1 GiB out of RAM."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    os.symlink(gib_archive, model_dir / "model.tar.gz")
    monkeypatch.setenv(MAX_BYTES_ENV, str(256 << 20))
    with pytest.raises(ModelLoadError, match=MAX_BYTES_ENV):
        load_model_dir(model_dir)


@pytest.mark.parametrize("links", [{"loop": "."}, {"a": "b", "b": "a"}, {"sub/up": ".."}])
def test_a_symlink_loop_in_a_model_directory_is_a_clear_error(tmp_path, links):
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "model_algo-1").write_bytes(b"m")
    for name, to in links.items():
        os.symlink(to, model / name)
    with pytest.raises(CustomerError) as info:
        copy_model_dir(model, tmp_path / "copy")
    message = str(info.value)
    assert str(model) in message and "symbolic link" in message and "loop" in message
    assert any(name in message for name in links)
    assert not (tmp_path / "copy").exists()


def test_a_model_directory_with_links_is_copied_with_them_followed(tmp_path):
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere").write_bytes(b"weights")
    os.symlink(tmp_path / "elsewhere", model / "model_algo-1")
    os.symlink("sub", model / "alias")
    copy_model_dir(model, tmp_path / "copy")
    assert (tmp_path / "copy" / "model_algo-1").read_bytes() == b"weights"
    assert not (tmp_path / "copy" / "model_algo-1").is_symlink() and (tmp_path / "copy" / "alias").is_dir()
