"""Pipe feeder against real FIFOs: epochs, gzip, RecordIO wrapping, early close, clean stop."""
from __future__ import annotations

import gzip
import io
import os
import stat
import threading
import time

import pytest

from smlocal.data.recordio import iter_records
from smlocal.errors import CustomerError
from smlocal.runtime.pipes import PipeFeeder, PipeSet
from smlocal.runtime.plan import DataObject, PipeFeed


def _objects(tmp_path, contents, gz=False):
    objs = []
    for i, data in enumerate(contents):
        path = tmp_path / f"part-{i}{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(data) if gz else data)
        objs.append(DataObject(path.name, str(path), path.stat().st_size))
    return tuple(objs)


def _read_epoch(fifo_dir, channel, epoch, limit=None, timeout=10):
    path = fifo_dir / f"{channel}_{epoch}"
    deadline = time.time() + timeout
    while not path.exists():  # the protocol: poll until the next epoch's FIFO appears
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    assert stat.S_ISFIFO(os.stat(path).st_mode)
    out = bytearray()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(65536):
            out += chunk
            if limit and len(out) >= limit:
                break
    return bytes(out)


@pytest.fixture
def fifo_dir(tmp_path):
    d = tmp_path / "input" / "data"
    d.mkdir(parents=True)
    return d


def test_epochs_stream_the_files_in_order(tmp_path, fifo_dir):
    contents = [b"1,2\n3,4\n", b"5,6\n", os.urandom(300_000)]
    feed = PipeFeed("train", str(fifo_dir), _objects(tmp_path, contents))
    feeder = PipeFeeder(feed, chunk=4096)
    feeder.start()
    try:
        for epoch in range(3):
            assert _read_epoch(fifo_dir, "train", epoch) == b"".join(contents)
    finally:
        t0 = time.time()
        feeder.stop()
        feeder.join(5)
    assert not feeder.is_alive() and time.time() - t0 < 2  # stopped while waiting for a reader of epoch 3
    assert list(fifo_dir.iterdir()) == []  # no FIFO left behind
    assert feeder.epochs_done == 3 and feeder.error is None


def test_each_epoch_reports_its_total(tmp_path, fifo_dir):
    """The feeder says how many bytes each epoch carried, a reader that closes early included."""
    # more than the FIFO's buffer (the feeder asks for 1 MiB), so a reader that closes early cuts the epoch short
    contents = [b"x" * 5000, os.urandom(3_000_000)]
    feed = PipeFeed("train", str(fifo_dir), _objects(tmp_path, contents))
    totals = []
    feeder = PipeFeeder(feed, on_epoch=lambda f, epoch, n: totals.append((f.channel, epoch, n)), chunk=4096)
    feeder.start()
    try:
        assert len(_read_epoch(fifo_dir, "train", 0)) == 3_005_000
        _read_epoch(fifo_dir, "train", 1, limit=4096)
        _read_epoch(fifo_dir, "train", 2)
    finally:
        feeder.stop()
        feeder.join(5)
    assert totals[0] == ("train", 0, 3_005_000) and totals[2] == ("train", 2, 3_005_000)
    assert totals[1][:2] == ("train", 1) and 4096 <= totals[1][2] < 3_005_000


def test_gzip_is_decompressed(tmp_path, fifo_dir):
    contents = [b"a" * 10000 + b"\n", b"b,c\n"]
    objs = _objects(tmp_path, contents, gz=True)
    multi = tmp_path / "multi.gz"  # a multi-member gzip file is read whole, like gunzip
    multi.write_bytes(gzip.compress(b"m1\n") + gzip.compress(b"m2\n"))
    objs += (DataObject("multi.gz", str(multi)),)
    with PipeSet([PipeFeed("train", str(fifo_dir), objs, compression="Gzip")]):
        assert _read_epoch(fifo_dir, "train", 0) == b"".join(contents) + b"m1\nm2\n"


def test_recordio_wrapping_one_record_per_file(tmp_path, fifo_dir):
    magic = (0xCED7230A).to_bytes(4, "little")
    contents = [b"raw-bytes-1", b"x" * 4096, b"abcd" + magic + b"tail"]  # aligned magic: split as dmlc does
    objs = _objects(tmp_path, contents, gz=True)
    with PipeSet([PipeFeed("train", str(fifo_dir), objs, compression="Gzip", record_wrapper="RecordIO")]):
        stream = _read_epoch(fifo_dir, "train", 0)
    assert list(iter_records(io.BytesIO(stream))) == contents


def test_shuffle_order_per_epoch(tmp_path, fifo_dir):
    contents = [f"{i}\n".encode() for i in range(8)]
    feed = PipeFeed("train", str(fifo_dir), _objects(tmp_path, contents), shuffle_seed=42)
    with PipeSet([feed]):
        got = [_read_epoch(fifo_dir, "train", e) for e in range(3)]
    for epoch, data in enumerate(got):
        expected = b"".join(open(o.path, "rb").read() for o in feed.objects_for_epoch(epoch))
        assert data == expected and sorted(data.splitlines()) == sorted(c.strip() for c in contents)
    assert len(set(got)) > 1


def test_reader_closing_early_ends_the_epoch(tmp_path, fifo_dir):
    contents = [os.urandom(1_000_000)]
    with PipeSet([PipeFeed("train", str(fifo_dir), _objects(tmp_path, contents))]):
        part = _read_epoch(fifo_dir, "train", 0, limit=1000)
        assert contents[0].startswith(part)
        assert _read_epoch(fifo_dir, "train", 1) == contents[0]


def test_stop_while_the_reader_is_stuck(tmp_path, fifo_dir):
    """A reader that opened the pipe but stopped reading: stop() still ends the writer promptly."""
    feeder = PipeFeeder(PipeFeed("train", str(fifo_dir), _objects(tmp_path, [os.urandom(2_000_000)])))
    feeder.start()
    path = fifo_dir / "train_0"
    while not path.exists():
        time.sleep(0.01)
    reader = open(path, "rb", buffering=0)
    try:
        reader.read(10)
        while feeder.bytes_written < 65536:  # the pipe buffer is full: the writer waits on the reader
            time.sleep(0.01)
        t0 = time.time()
        feeder.stop()
        feeder.join(5)
        assert not feeder.is_alive() and time.time() - t0 < 2
    finally:
        reader.close()
    assert not path.exists()


def test_bad_gzip_is_reported(tmp_path, fifo_dir):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not gzip at all")
    errors = []
    feeds = [PipeFeed("train", str(fifo_dir), (DataObject("bad.gz", str(bad)),), compression="Gzip")]
    pipes = PipeSet(feeds, on_error=errors.append).start()
    reader = threading.Thread(target=lambda: _read_epoch(fifo_dir, "train", 0))
    reader.start()
    reader.join(10)
    pipes.stop()
    assert isinstance(pipes.error, CustomerError) and errors == [pipes.error]
    assert "bad.gz" in str(pipes.error) and "gzip" in str(pipes.error)


@pytest.mark.parametrize("gz", [False, True], ids=["spliced", "gzip"])
def test_a_source_file_gone_before_it_is_read_is_a_customer_error_naming_it(tmp_path, fifo_dir, gz):
    objects = _objects(tmp_path, [b"1,2\n", b"3,4\n", b"5,6\n"], gz=gz)
    os.unlink(objects[1].path)  # deleted after the job listed it, before the feeder reached it
    feed = PipeFeed("train", str(fifo_dir), objects, compression="Gzip" if gz else "None")
    with PipeSet([feed]) as pipes:
        assert _read_epoch(fifo_dir, "train", 0) == b"1,2\n"  # the first file, then the end of the data
    assert isinstance(pipes.error, CustomerError), repr(pipes.error)
    assert objects[1].path in str(pipes.error) and "disappeared or could not be read" in str(pipes.error)
