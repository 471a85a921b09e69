"""Record <-> numpy: the vectorised fast path agrees with the generated class, dense and sparse codecs."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.data import record_pb2
from smlocal.data.protobuf import (
    RecordDecodeError,
    decode_fixed_block,
    decode_records,
    dense_layout,
    dense_to_records,
    label_records,
    records_to_arrays,
    sparse_to_records,
)


def block_of(payloads: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(len(payloads), -1)


def pb_record(features=None, kind="float32_tensor", label=None, label_kind="float32_tensor", keys=None,
              shape=None, uid=None) -> bytes:
    """Serialise with the generated class: the reference for what the fast path must reproduce."""
    rec = record_pb2.Record()
    if features is not None:
        tensor = getattr(rec.features["values"], kind)
        tensor.values.extend(list(features))
        if keys is not None:
            tensor.keys.extend(list(keys))
        if shape is not None:
            tensor.shape.extend(list(shape))
    if label is not None:
        getattr(rec.label["values"], label_kind).values.extend([label])
    if uid is not None:
        rec.uid = uid
    return rec.SerializeToString()


@pytest.mark.parametrize("dim", [1, 2, 3, 31, 50, 200])
@pytest.mark.parametrize("label_dtype", [None, np.float32, np.float64])
def test_fast_path_equals_generated_class(dim, label_dtype):
    rng = np.random.default_rng(dim)
    n = 64
    x = (rng.standard_normal((n, dim)) * 1e3).astype(np.float32)
    x[0, 0] = -0.0
    x[1, 0] = np.float32(np.finfo(np.float32).tiny) / 2  # subnormal survives both paths
    x[2, 0] = np.inf
    y = None if label_dtype is None else rng.integers(0, 5, n).astype(label_dtype) + 0.5
    payloads = dense_to_records(x, y)
    fast = decode_fixed_block(block_of(payloads))
    assert fast is not None, "canonical dense float32 records must take the fast path"
    slow = decode_records(payloads, cast=True)
    np.testing.assert_array_equal(fast[0], slow[0])
    assert fast[0].dtype == np.float32 and fast[0].flags.c_contiguous and fast[0].flags.writeable
    np.testing.assert_array_equal(fast[0].view(np.uint32), x.view(np.uint32))  # bit-exact, sign of zero too
    if y is None:
        assert fast[1] is None and slow[1] is None
    else:
        np.testing.assert_array_equal(fast[1], slow[1])
        np.testing.assert_array_equal(fast[1], y.astype(np.float32))
        assert fast[1].dtype == np.float32


def test_fast_path_bytes_written_by_the_generated_class():
    rows = np.arange(12, dtype=np.float32).reshape(4, 3)
    payloads = [pb_record(r, label=float(i)) for i, r in enumerate(rows)]
    assert payloads == dense_to_records(rows, np.arange(4, dtype=np.float32))
    fast = decode_fixed_block(block_of(payloads))
    np.testing.assert_array_equal(fast[0], rows)
    np.testing.assert_array_equal(fast[1], np.arange(4, dtype=np.float32))


def test_fast_path_keeps_float64_labels_when_not_cast():
    x = np.ones((3, 2), dtype=np.float32)
    y = np.array([0.1, 0.2, 1e300])
    feats, labels = decode_fixed_block(block_of(dense_to_records(x, y)), cast=False)
    assert labels.dtype == np.float64 and labels.tolist() == y.tolist()


@pytest.mark.parametrize("payload", [
    pb_record([1.0, 2.0], kind="float64_tensor"),
    pb_record([1, 2], kind="int32_tensor"),
    pb_record([1.0, 2.0], keys=[0, 3], shape=[5]),
    pb_record([1.0, 2.0], shape=[2]),
    pb_record([1.0, 2.0], uid="row-1"),
    pb_record([1.0, 2.0], label=1, label_kind="int32_tensor"),
    pb_record(None, label=1.0),
])
def test_non_canonical_layouts_are_left_to_the_generated_class(payload):
    assert dense_layout(payload) is None
    assert decode_fixed_block(block_of([payload] * 3)) is None


def test_template_mismatch_falls_back_instead_of_misreading():
    good = dense_to_records(np.ones((3, 2), dtype=np.float32), np.ones(3, dtype=np.float32))
    # same length, but the label key is "valuez": not a label for the built-ins
    odd = good[0].replace(b"\x0a\x06values\x12\x08", b"\x0a\x06valuez\x12\x08")
    assert len(odd) == len(good[0]) and odd != good[0]
    assert decode_fixed_block(block_of(good[:2] + [odd])) is None
    with pytest.raises(RecordDecodeError, match="#2.*mixes labeled and unlabeled"):
        records_to_arrays(good[:2] + [odd])


def test_native_dtypes_and_cast():
    x64 = np.array([[1.5, 2.5], [3.5, 4.5]])
    feats, labels = decode_records(dense_to_records(x64, np.array([1, 2])))
    assert feats.dtype == np.float64 and labels.dtype == np.int32
    np.testing.assert_array_equal(feats, x64)
    xi = np.array([[1, -2], [3, 2**31 - 1]])
    feats, _ = decode_records(dense_to_records(xi))
    assert feats.dtype == np.int32 and feats.tolist() == xi.tolist()
    feats, labels = records_to_arrays(dense_to_records(xi, np.array([0.5, 1.5])))
    assert feats.dtype == np.float32 and labels.dtype == np.float32
    with pytest.raises(ValueError, match="int32"):
        dense_to_records(np.array([[2**40]]))


def test_sparse_round_trip_with_empty_rows():
    dense = np.array([[0, 1.5, 0, 0, 2], [0, 0, 0, 0, 0], [3, 0, 0, 0, 0]], dtype=np.float32)
    csr = sp.csr_matrix(dense)
    labels = np.array([1, 0, 1], dtype=np.float32)
    feats, out_labels = records_to_arrays(sparse_to_records(csr, labels))
    assert sp.isspmatrix_csr(feats) and feats.shape == (3, 5) and feats.dtype == np.float32
    np.testing.assert_array_equal(feats.toarray(), dense)
    np.testing.assert_array_equal(out_labels, labels)
    empty_row, no_label = decode_records([sparse_to_records(csr)[1]])
    assert sp.isspmatrix_csr(empty_row) and empty_row.shape == (1, 5) and empty_row.nnz == 0 and no_label is None


def test_sparse_multidimensional_shape_uses_flat_keys():
    feats, _ = decode_records([pb_record([7.0], keys=[5], shape=[2, 3])])
    assert feats.shape == (1, 6) and feats.toarray()[0, 5] == 7.0


def test_mixed_dense_and_sparse_rows_become_csr():
    payloads = [pb_record([1.0, 0.0, 2.0]), pb_record([5.0], keys=[1], shape=[3])]
    feats, _ = decode_records(payloads, cast=True)
    np.testing.assert_array_equal(feats.toarray(), [[1, 0, 2], [0, 5, 0]])


@pytest.mark.parametrize("payloads, message", [
    ([b"\xff\xff\xff"], "#0 is not a valid aialgs.data.Record"),
    ([pb_record(None, label=1.0)], "#0 has no features\\['values'\\]"),
    ([pb_record([1.0, 2.0]), pb_record([1.0])], "#1 has 1 features but the records before it have 2"),
    ([pb_record([1.0], keys=[0])], "#0 is sparse .* no shape"),
    ([pb_record([1.0, 2.0], keys=[0], shape=[4])], "#0 has 1 keys but 2 values"),
    ([pb_record([1.0], keys=[9], shape=[4])], "#0 has key 9 outside its shape"),
    ([pb_record([1.0], label=1.0), pb_record([1.0])], "#1 mixes labeled and unlabeled"),
])
def test_bad_records_name_the_record(payloads, message):
    with pytest.raises(RecordDecodeError, match=message) as info:
        records_to_arrays(payloads)
    assert info.value.exit_code == 2


def test_label_with_two_values_is_rejected():
    rec = record_pb2.Record()
    rec.features["values"].float32_tensor.values.extend([1.0])
    rec.label["values"].float32_tensor.values.extend([1.0, 2.0])
    with pytest.raises(RecordDecodeError, match="has 2 values in label.*expected exactly one"):
        records_to_arrays([rec.SerializeToString()])


def test_bytes_value_is_rejected():
    rec = record_pb2.Record()
    rec.features["values"].bytes.value.append(b"raw")
    with pytest.raises(RecordDecodeError, match="#0 holds a 'bytes' value in features"):
        records_to_arrays([rec.SerializeToString()])


def test_dense_encoder_is_byte_identical_to_the_generated_class():
    rng = np.random.default_rng(3)
    for dtype, kind in ((np.float32, "float32_tensor"), (np.float64, "float64_tensor")):
        x = rng.standard_normal((5, 300)).astype(dtype)  # 300 floats: multi-byte varint lengths
        y = rng.standard_normal(5).astype(dtype)
        expected = [pb_record(r, kind=kind, label=float(v), label_kind=kind) for r, v in zip(x, y, strict=True)]
        assert dense_to_records(x, y) == expected
    assert dense_to_records(np.zeros((2, 0), dtype=np.float32)) == [pb_record([])] * 2


def test_label_records_for_inference_responses():
    payloads = label_records({"closest_cluster": np.array([1, 4]), "distance_to_cluster": np.array([0.5, 2.25])})
    recs = [record_pb2.Record.FromString(p) for p in payloads]
    assert [r.label["closest_cluster"].float32_tensor.values[0] for r in recs] == [1.0, 4.0]
    assert [r.label["distance_to_cluster"].float32_tensor.values[0] for r in recs] == [0.5, 2.25]
    assert not recs[0].features
    vectors = label_records({"projection": np.array([[1.0, 2.0, 3.0]])})
    assert list(record_pb2.Record.FromString(vectors[0]).label["projection"].float32_tensor.values) == [1, 2, 3]
    with pytest.raises(ValueError, match="rows"):
        label_records({"a": np.zeros(2), "b": np.zeros(3)})
