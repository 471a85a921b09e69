"""Channels: File directories and real Pipe-mode FIFOs -> exact-size batches (bad input: test_channel_errors.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.data.channels import Batch, open_channel, rebatch
from smlocal.data.protobuf import sparse_to_records
from smlocal.data.recordio import MAGIC_BYTES, encode_records, frame
from smlocal.errors import CustomerError
from tests.datasets import random_dataset, recordio_of
from tests.helpers import training_env

CANONICAL = ("Unable to read data channel 'train'. Requested content-type is '{ct}'. "
             "Please verify the data matches the requested content-type.")
NAN = "Found missing (NaN) values. Please remove any missing (NaN) values in the input data."
RECORDIO = "application/x-recordio-protobuf"


def collect(batches) -> tuple[np.ndarray, np.ndarray | None, list[int]]:
    batches = list(batches)
    sizes = [len(b) for b in batches]
    feats = [b.features.toarray() if sp.issparse(b.features) else b.features for b in batches]
    labels = None if batches[0].labels is None else np.concatenate([b.labels for b in batches])
    return np.concatenate(feats), labels, sizes


# ----------------------------------------------------------------------------------------- File mode
def test_file_mode_recursive_sorted_hidden_skipped(base):
    x, y = random_dataset(30)
    env = training_env(base, files={
        "train/b/part-2": recordio_of(x[20:], y[20:]),
        "train/a.pbr": recordio_of(x[:10], y[:10]),
        "train/b/part-1": recordio_of(x[10:20], y[10:20]),
        "train/.hidden": b"not recordio at all",
        "train/.cache/junk": b"not recordio either",
    })
    channel = open_channel(env, "train")
    rel = [p.relative_to(base / "input/data/train").as_posix() for p in channel.files()]
    assert rel == ["a.pbr", "b/part-1", "b/part-2"]
    feats, labels, sizes = collect(channel.batches(8))
    assert sizes == [8, 8, 8, 6]
    np.testing.assert_array_equal(feats, x)
    np.testing.assert_array_equal(labels, y)
    assert channel.feature_dim == 3
    assert all(b.features.dtype == np.float32 and b.labels.dtype == np.float32 for b in channel.batches(7))


def test_every_epoch_rereads_the_files(base):
    x, y = random_dataset(10)
    env = training_env(base, files={"train/data": recordio_of(x, y)})
    channel = open_channel(env, "train")
    for epoch in range(3):
        np.testing.assert_array_equal(collect(channel.batches(4, epoch))[0], x)


@pytest.mark.parametrize("cuts", [(1,), (7, 500), (13, 14, 15, 2001)])
def test_record_split_across_files(base, cuts):
    x, y = random_dataset(200, d=5)
    data = recordio_of(x, y)
    edges = [0, *cuts, len(data)]
    files = {f"train/part-{i:02d}": data[a:b] for i, (a, b) in enumerate(zip(edges, edges[1:]))}
    env = training_env(base, files=files)
    feats, labels, _ = collect(open_channel(env, "train").batches(64))
    np.testing.assert_array_equal(feats, x)
    np.testing.assert_array_equal(labels, y)


@pytest.mark.parametrize("chunk", [1, 3, 64, 1000])
def test_short_reads_of_any_size(base, chunk):
    x, y = random_dataset(120, d=4)
    mixed = recordio_of(x[:60], y[:60]) + encode_records(sparse_to_records(sp.csr_matrix(x[60:]), y[60:]))
    env = training_env(base, files={"train/data": mixed})
    feats, labels, sizes = collect(open_channel(env, "train", chunk_size=chunk).batches(50))
    assert sizes == [50, 50, 20]
    np.testing.assert_allclose(feats, x)
    np.testing.assert_array_equal(labels, y)


def test_continuation_records_split_across_files_and_reads(base):
    """Payloads holding the magic are written as dmlc continuation parts; cut anywhere, they still join."""
    magic_float = np.frombuffer(MAGIC_BYTES, dtype="<f4")[0]
    x, y = random_dataset(40, d=6)
    x[::3] = magic_float
    data = recordio_of(x, y)
    assert data.count(MAGIC_BYTES) > 40  # really split into parts
    files = {"train/a": data[:101], "train/b": data[101:102], "train/c": data[102:]}
    env = training_env(base, files=files)
    for chunk in (5, 64, 1 << 20):
        feats, labels, _ = collect(open_channel(env, "train", chunk_size=chunk).batches(16))
        np.testing.assert_array_equal(feats.view(np.uint32), x.view(np.uint32))
        np.testing.assert_array_equal(labels, y)


def test_sparse_channel_yields_csr(base):
    dense = np.zeros((20, 1000), dtype=np.float32)
    dense[np.arange(20), np.arange(20) * 7] = np.arange(20) + 1
    env = training_env(base, files={"train/s": encode_records(sparse_to_records(sp.csr_matrix(dense)))})
    batches = list(open_channel(env, "train").batches(6))
    assert [len(b) for b in batches] == [6, 6, 6, 2]
    assert all(sp.isspmatrix_csr(b.features) and b.features.shape[1] == 1000 for b in batches)
    assert batches[0].labels is None
    np.testing.assert_array_equal(sp.vstack([b.features for b in batches]).toarray(), dense)


def test_csv_channel_with_label_and_without(base):
    x, y = random_dataset(9, d=2)
    rows = np.column_stack([y, x])
    text = "".join(",".join(repr(float(v)) for v in r) + "\n" for r in rows).encode()
    cut = text.index(b"\n", 40) + 1
    files = {"train/a.csv": text[:cut], "train/b.csv": text[cut:].rstrip()}  # b.csv lacks its final newline
    env = training_env(base, {"train": {"ContentType": "text/csv"}}, files)
    feats, labels, sizes = collect(open_channel(env, "train").batches(4))
    assert sizes == [4, 4, 1]
    np.testing.assert_array_equal(feats, x)
    np.testing.assert_array_equal(labels, y)
    env = training_env(base, {"train": {"ContentType": "text/csv;label_size=0"}})
    feats, labels, _ = collect(open_channel(env, "train").batches(100))
    assert labels is None and feats.shape == (9, 3)


def test_rebatch_exact_sizes_and_views():
    pieces = [(np.arange(n * 2, dtype=np.float32).reshape(n, 2), None) for n in (3, 10, 1, 7)]
    sizes = [len(b) for b in rebatch(pieces, 4)]
    assert sizes == [4, 4, 4, 4, 4, 1]
    big = np.zeros((8, 2), dtype=np.float32)
    first = next(iter(rebatch([(big, None)], 4)))
    assert isinstance(first, Batch) and np.shares_memory(first.features, big)


# ----------------------------------------------------------------------------------------- Pipe mode
def _pipe_env(base, content_type=RECORDIO):
    return training_env(base, {"train": {"TrainingInputMode": "Pipe", "ContentType": content_type}})


class FifoWriter(threading.Thread):
    """Plays SageMaker's side: creates train_<epoch> late, writes it in odd-sized pieces, closes it."""

    def __init__(self, base, epochs: list[bytes], piece=997, delay=0.05, gate=None):
        super().__init__(daemon=True)
        self.base, self.epochs, self.piece, self.delay, self.gate = base, epochs, piece, delay, gate
        self.error = None
        self.gate_timed_out = False

    def run(self):
        try:
            for epoch, data in enumerate(self.epochs):
                time.sleep(self.delay)  # the reader must wait for the FIFO to appear
                path = self.base / "input" / "data" / f"train_{epoch}"
                os.mkfifo(path)
                with open(path, "wb", buffering=0) as f:
                    for i in range(0, len(data), self.piece):
                        if self.gate is not None and i >= len(data) // 2 and not self.gate.is_set():
                            self.gate_timed_out = not self.gate.wait(10)
                        f.write(data[i : i + self.piece])
        except BrokenPipeError:
            pass  # the reader stopped early: SageMaker's feeder sees the same
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def test_pipe_mode_several_epochs_with_a_writer_thread(base):
    env = _pipe_env(base)
    epochs = [random_dataset(300, d=6, seed=s) for s in range(3)]
    writer = FifoWriter(base, [recordio_of(x, y) for x, y in epochs])
    writer.start()
    channel = open_channel(env, "train", chunk_size=4096)
    for epoch, (x, y) in enumerate(epochs):
        feats, labels, sizes = collect(channel.batches(128, epoch))
        assert sizes == [128, 128, 44]
        np.testing.assert_array_equal(feats, x)
        np.testing.assert_array_equal(labels, y)
    writer.join(10)
    assert writer.error is None and not writer.is_alive()


def test_pipe_mode_fed_by_another_process(base):
    env = _pipe_env(base, "text/csv")
    script = (
        "import os, sys, time\n"
        "base = sys.argv[1]\n"
        "for epoch in range(2):\n"
        "    time.sleep(0.05)\n"
        "    path = os.path.join(base, 'input', 'data', f'train_{epoch}')\n"
        "    os.mkfifo(path)\n"
        "    with open(path, 'wb', buffering=0) as f:\n"
        "        for i in range(50):\n"
        "            f.write(f'{epoch},{i},{i * 0.5}\\n'.encode())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(base)])
    try:
        channel = open_channel(env, "train")
        for epoch in range(2):
            feats, labels, sizes = collect(channel.batches(20, epoch))
            assert sizes == [20, 20, 10]
            assert labels.tolist() == [epoch] * 50
            assert feats[:, 0].tolist() == list(range(50))
    finally:
        assert proc.wait(10) == 0


def test_pipe_mode_csv_objects_wrapped_in_recordio(base):
    """RecordWrapperType=RecordIO: the feeder wraps each CSV object in one RecordIO record."""
    env = training_env(base, {"train": {"TrainingInputMode": "Pipe", "ContentType": "text/csv",
                                    "RecordWrapperType": "RecordIO"}})
    objects = [b"1,1.5,2\n0,3,4\n", b"1,5,6", b"0,7,8\n"]  # the second object lacks its final newline
    writer = FifoWriter(base, [b"".join(frame(o) for o in objects)], piece=5)
    writer.start()
    feats, labels, _ = collect(open_channel(env, "train").batches(3))
    writer.join(10)
    assert feats.tolist() == [[1.5, 2], [3, 4], [5, 6], [7, 8]] and labels.tolist() == [1, 0, 1, 0]


def test_pipe_mode_streams_before_the_writer_finishes(base):
    """The first batch must arrive while half the epoch is still unwritten: memory ~ batch, not dataset."""
    env = _pipe_env(base)
    x, y = random_dataset(2000, d=8)
    gate = threading.Event()
    writer = FifoWriter(base, [recordio_of(x, y)], piece=4096, delay=0, gate=gate)
    writer.start()
    batches = open_channel(env, "train", chunk_size=8192).batches(100)
    first = next(batches)
    gate.set()
    feats = np.concatenate([first.features] + [b.features for b in batches])
    writer.join(10)
    assert not writer.gate_timed_out, "the reader waited for the whole epoch before yielding a batch"
    np.testing.assert_array_equal(feats, x)


def test_pipe_mode_reader_may_stop_early(base):
    env = _pipe_env(base)
    x, y = random_dataset(5000, d=8)
    writer = FifoWriter(base, [recordio_of(x, y)], piece=4096, delay=0)
    writer.start()
    batches = open_channel(env, "train", chunk_size=4096).batches(10)
    assert len(next(batches)) == 10
    batches.close()  # closes the FIFO: the writer gets EPIPE instead of blocking forever
    writer.join(10)
    assert not writer.is_alive() and writer.error is None


def test_pipe_fifo_that_never_appears(base, monkeypatch):
    monkeypatch.setenv("SMLOCAL_PIPE_WAIT_SECONDS", "0.2")
    env = _pipe_env(base)
    with pytest.raises(CustomerError) as info:
        next(open_channel(env, "train").batches(10, epoch=3))
    msg = str(info.value)
    assert "channel 'train'" in msg and "train_3" in msg and "0.2 seconds" in msg
    assert info.value.exit_code == 2
