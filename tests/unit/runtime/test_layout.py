"""The host tree's executor: File-mode gzip files written decompressed, bad ones refused leaving nothing."""
from __future__ import annotations

import gzip

import pytest

from smlocal.errors import CustomerError
from smlocal.runtime.layout import gunzip
from smlocal.runtime.plan import Mount


def test_gunzip_streams_a_gzip_file_to_its_target(tmp_path):
    data = b"1,2\n" * 300_000  # several chunks
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(data))
    gunzip(Mount(str(tmp_path / "a.csv.gz"), "input/data/train/a.csv"), tmp_path / "tree" / "a.csv")
    assert (tmp_path / "tree" / "a.csv").read_bytes() == data


@pytest.mark.parametrize("content, says", [(b"1,2\n3,4\n", "is not a gzip file"),
                                           (gzip.compress(b"1,2\n" * 1000)[:-20], "is not valid gzip")],
                         ids=["plain", "truncated"])
def test_gunzip_refuses_a_bad_file_naming_it_and_leaves_nothing(tmp_path, content, says):
    source = tmp_path / "a.csv.gz"
    source.write_bytes(content)
    tree = tmp_path / "tree"
    with pytest.raises(CustomerError, match=says) as info:
        gunzip(Mount(str(source), "input/data/train/a.csv"), tree / "a.csv")
    assert str(source) in str(info.value)
    assert not tree.exists() or list(tree.iterdir()) == []
