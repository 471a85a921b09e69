"""Our data plane against the real sagemaker SDK writers/readers and MXNet 1.9.1's RecordIO, both ways."""
from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.data.channels import open_channel
from smlocal.data.protobuf import (
    decode_fixed_block,
    decode_records,
    dense_to_records,
    label_records,
    records_to_arrays,
    sparse_to_records,
)
from smlocal.data.recordio import MAGIC_BYTES, encode_records, frame, iter_records
from smlocal.environment import load_training_env
from tests.datasets import sdk_recordio, sdk_sparse_recordio
from tests.helpers import write_config

common = pytest.importorskip("sagemaker.amazon.common")
RNG = np.random.default_rng(11)


def our_payloads(data: bytes) -> list[bytes]:
    return list(iter_records(io.BytesIO(data), source="sdk"))


@pytest.mark.parametrize("dtype, native", [(np.float32, np.float32), (np.float64, np.float64), (np.int64, np.int32)])
def test_sdk_dense_files_decode_to_the_same_arrays(dtype, native):
    x = (RNG.standard_normal((40, 6)) * 100).astype(dtype)
    y = RNG.integers(0, 4, 40).astype(dtype)
    payloads = our_payloads(sdk_recordio(x, y))
    feats, labels = decode_records(payloads)
    assert feats.dtype == native and labels.dtype == native
    np.testing.assert_array_equal(feats, x)
    np.testing.assert_array_equal(labels, y)
    feats, labels = records_to_arrays(payloads)
    assert feats.dtype == np.float32 and labels.dtype == np.float32
    np.testing.assert_array_equal(feats, x.astype(np.float32))
    np.testing.assert_array_equal(labels, y.astype(np.float32))


def test_sdk_float32_file_takes_the_fast_path_with_float64_labels():
    x = RNG.standard_normal((30, 9)).astype(np.float32)
    y = RNG.standard_normal(30)  # float64 labels: the SDK writes a Float64Tensor label
    payloads = our_payloads(sdk_recordio(x, y))
    block = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(30, -1)
    feats, labels = decode_fixed_block(block, cast=False)
    np.testing.assert_array_equal(feats, x)
    assert labels.dtype == np.float64 and labels.tolist() == y.tolist()


def test_sdk_sparse_file_decodes_to_the_same_csr():
    matrix = sp.random(50, 200, density=0.05, format="csr", random_state=3, dtype=np.float32)
    labels = RNG.integers(0, 2, 50).astype(np.float32)
    feats, out_labels = records_to_arrays(our_payloads(sdk_sparse_recordio(matrix, labels)))
    assert sp.isspmatrix_csr(feats) and feats.shape == (50, 200)
    np.testing.assert_array_equal(feats.toarray(), matrix.toarray())
    np.testing.assert_array_equal(out_labels, labels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_our_dense_encoding_is_byte_identical_to_the_sdk(dtype):
    x = (RNG.standard_normal((20, 5)) * 10).astype(dtype)
    y = RNG.integers(0, 3, 20).astype(dtype)
    assert encode_records(dense_to_records(x, y)) == sdk_recordio(x, y)
    assert encode_records(dense_to_records(x)) == sdk_recordio(x)


def test_our_files_are_read_back_identically_by_the_sdk():
    x = RNG.standard_normal((25, 4)).astype(np.float32)
    y = RNG.integers(0, 2, 25).astype(np.float32)
    records = common.read_records(io.BytesIO(encode_records(dense_to_records(x, y))))
    assert len(records) == 25
    np.testing.assert_array_equal(np.array([r.features["values"].float32_tensor.values for r in records]), x)
    np.testing.assert_array_equal(np.array([r.label["values"].float32_tensor.values[0] for r in records]), y)

    matrix = sp.random(10, 30, density=0.2, format="csr", random_state=4, dtype=np.float32)
    records = common.read_records(io.BytesIO(encode_records(sparse_to_records(matrix))))
    for row, rec in zip(matrix, records):
        tensor = rec.features["values"].float32_tensor
        assert list(tensor.keys) == row.indices.tolist() and list(tensor.shape) == [30]
        np.testing.assert_array_equal(np.array(tensor.values, dtype=np.float32), row.data)


def test_sdk_record_serializer_and_deserializer():
    from sagemaker.deserializers import RecordDeserializer
    from sagemaker.serializers import RecordSerializer

    x = RNG.standard_normal((3, 5)).astype(np.float32)
    body = RecordSerializer().serialize(x)  # a BytesIO positioned at 0
    feats, labels = records_to_arrays(our_payloads(body.read()))
    np.testing.assert_array_equal(feats, x)
    assert labels is None
    body = encode_records(label_records({"closest_cluster": np.array([2, 0, 1]),
                                         "distance_to_cluster": np.array([0.25, 1.5, 3.0])}))
    records = RecordDeserializer().deserialize(io.BytesIO(body), "application/x-recordio-protobuf")
    assert [r.label["closest_cluster"].float32_tensor.values[0] for r in records] == [2.0, 0.0, 1.0]
    assert [r.label["distance_to_cluster"].float32_tensor.values[0] for r in records] == [0.25, 1.5, 3.0]


def test_channel_reads_an_sdk_written_file(base):
    x = RNG.standard_normal((70, 3)).astype(np.float32)
    y = RNG.integers(0, 2, 70).astype(np.float32)
    write_config(base, {}, {"train": {"TrainingInputMode": "File"}})
    (base / "input/data/train").mkdir(parents=True)
    (base / "input/data/train/matrix_0.pbr").write_bytes(sdk_recordio(x, y))
    batches = list(open_channel(load_training_env(base), "train").batches(32))
    assert [len(b) for b in batches] == [32, 32, 6]
    np.testing.assert_array_equal(np.concatenate([b.features for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), y)


# ------------------------------------------------------------------------------------------ MXNet
def _mx():
    return pytest.importorskip("mxnet")


def mx_write(path, payloads) -> bytes:
    writer = _mx().recordio.MXRecordIO(str(path), "w")
    for p in payloads:
        writer.write(p)
    writer.close()
    return path.read_bytes()


def mx_read(path) -> list[bytes]:
    reader = _mx().recordio.MXRecordIO(str(path), "r")
    out = []
    while (item := reader.read()) is not None:
        out.append(item)
    reader.close()
    return out


def test_mxnet_reads_our_protobuf_records(tmp_path):
    x = RNG.standard_normal((15, 7)).astype(np.float32)
    payloads = dense_to_records(x, RNG.integers(0, 2, 15).astype(np.float32))
    path = tmp_path / "ours.rec"
    path.write_bytes(encode_records(payloads))
    assert mx_read(path) == payloads


def test_we_read_mxnet_written_records(tmp_path):
    payloads = [bytes(RNG.integers(0, 256, n, dtype=np.uint8)) for n in (0, 1, 2, 3, 4, 5, 17, 100)]
    data = mx_write(tmp_path / "mx.rec", payloads)
    assert list(iter_records(io.BytesIO(data), source="mx.rec")) == payloads
    assert data == encode_records(payloads)


EMBEDDED = [
    b"abcd" + MAGIC_BYTES + b"efgh" + MAGIC_BYTES + b"xy",  # two aligned magics: parts 1, 2, 3
    MAGIC_BYTES,  # the whole payload is the magic: two empty parts
    MAGIC_BYTES * 3 + b"z",
    b"ab" + MAGIC_BYTES + b"cd",  # unaligned: not split
    b"tail" + MAGIC_BYTES,  # magic at the very end: empty last part
]


def test_embedded_magic_mxnet_writes_we_read(tmp_path):
    data = mx_write(tmp_path / "mx.rec", EMBEDDED)
    assert data.count(MAGIC_BYTES) > len(EMBEDDED) + 1  # MXNet really split them into continuation parts
    assert list(iter_records(io.BytesIO(data))) == EMBEDDED


def test_embedded_magic_we_write_mxnet_reads(tmp_path):
    path = tmp_path / "ours.rec"
    ours = b"".join(frame(p) for p in EMBEDDED)
    path.write_bytes(ours)
    assert mx_read(path) == EMBEDDED
    assert ours == mx_write(tmp_path / "mx.rec", EMBEDDED)  # byte for byte what dmlc's writer produces


def test_protobuf_record_containing_the_magic_round_trips_through_mxnet(tmp_path):
    magic_float = np.frombuffer(MAGIC_BYTES, dtype="<f4")[0]
    x = np.full((4, 8), magic_float, dtype=np.float32)  # some of these land 4-byte aligned in the payload
    payloads = dense_to_records(x)
    assert any(_aligned(p) for p in payloads)
    path = tmp_path / "m.rec"
    path.write_bytes(encode_records(payloads))
    assert mx_read(path) == payloads
    feats, _ = records_to_arrays(list(iter_records(io.BytesIO(mx_write(tmp_path / "mx.rec", payloads)))))
    np.testing.assert_array_equal(feats.view(np.uint32), x.view(np.uint32))


def _aligned(payload: bytes) -> bool:
    return any(payload[i : i + 4] == MAGIC_BYTES for i in range(0, len(payload) - 3, 4))
