"""Record decoder: encoded rows decode to the same arrays; any other payload is a ``RecordDecodeError`` or
arrays of the right shape, and the vectorised and the generated-class paths agree on it."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import example, given, strategies as st
from hypothesis.extra import numpy as hnp

from smlocal.data import record_pb2
from smlocal.data.protobuf import (RecordDecodeError, decode_fixed_block, decode_records, dense_to_records,
                                   records_to_arrays, sparse_to_records)
from tests.fuzz.harness import CI, Target, is_error, outcome
from tests.fuzz.mutations import mutated

# values past float32 become inf, as intended (and refused where finiteness matters): no warning noise
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
_shapes = st.tuples(st.integers(1, 6), st.integers(1, 5))
_floats = {np.float32: st.floats(width=32), np.float64: st.floats(), np.int32: st.integers(-2**31, 2**31 - 1)}


@st.composite
def dense_rows(draw):
    """(features, labels or None) as a user writes them: float32, float64 or int32 features."""
    shape = draw(_shapes)
    dtype = draw(st.sampled_from(list(_floats)))
    features = draw(hnp.arrays(dtype, shape, elements=_floats[dtype]))
    ldtype = draw(st.sampled_from([None, np.float32, np.float64]))
    labels = None if ldtype is None else draw(hnp.arrays(ldtype, shape[0], elements=_floats[ldtype]))
    return features, labels


@st.composite
def sparse_rows(draw):
    n, d = draw(_shapes)
    dense = draw(hnp.arrays(np.float32, (n, d), elements=st.sampled_from([0.0]) | st.floats(width=32)))
    return sp.csr_matrix(dense), None


def _tensor(kind: str):
    elements = {"float32_tensor": st.floats(width=32), "float64_tensor": st.floats(),
                "int32_tensor": st.integers(-2**31, 2**31 - 1)}[kind]
    u64 = st.sampled_from([0, 1, 2, 3, 2**32, 2**63, 2**64 - 1]) | st.integers(0, 2**64 - 1)
    return st.tuples(st.just(kind), st.lists(elements, max_size=4), st.lists(u64, max_size=3),
                     st.lists(u64, max_size=2))


_value = st.sampled_from(["float32_tensor", "float64_tensor", "int32_tensor"]).flatmap(_tensor) | st.just(
    ("bytes", [], [], []))
_entries = st.dictionaries(st.sampled_from(["values", "other", ""]), _value, max_size=2)


@st.composite
def structured_record(draw) -> bytes:
    """A Record built field by field: any tensor kind, keys, shapes and map keys."""
    record = record_pb2.Record()
    for field in ("features", "label"):
        for key, (kind, values, keys, shape) in draw(_entries).items():
            value = getattr(record, field)[key]
            if kind == "bytes":
                value.bytes.value.append(b"x")
                continue
            tensor = getattr(value, kind)
            tensor.values.extend(values)
            tensor.keys.extend(keys)
            tensor.shape.extend(shape)
            value.SetInParent()
    return record.SerializeToString()


def _encode(rows) -> list[bytes]:
    features, labels = rows
    return sparse_to_records(features, labels) if sp.issparse(features) else dense_to_records(features, labels)


_valid_record = (dense_rows() | sparse_rows()).map(_encode).map(lambda records: records[0])
_any_record = _valid_record | mutated(_valid_record) | structured_record() | st.binary(max_size=64)
# Lists of one record repeated (equal lengths: the vectorised path), or of records of any kind.
payload_lists = st.lists(_any_record, min_size=1, max_size=5) | st.tuples(
    _any_record, st.integers(2, 5)).map(lambda pair: [pair[0]] * pair[1])


def _assert_same(a, b) -> None:
    """Equal arrays, NaN equal to NaN; CSR compared by its arrays (a fuzzed shape may be huge: no toarray)."""
    assert sp.issparse(a) == sp.issparse(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    if sp.issparse(a):
        for part in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
        return
    np.testing.assert_array_equal(a, b)


def check_valid(rows) -> None:
    features, labels = rows
    X, y = records_to_arrays(_encode(rows))
    expected = features.astype(np.float32)
    if sp.issparse(features):
        X, expected = X.toarray(), expected.toarray()  # small: drawn shapes
    _assert_same(X, expected)
    if labels is None:
        assert y is None
    else:
        _assert_same(y, labels.astype(np.float32))


def check_payloads(payloads: list[bytes]) -> None:
    result = outcome(lambda: records_to_arrays(payloads))
    general = outcome(lambda: decode_records(payloads, cast=True))
    if is_error(result):
        assert is_error(general), "the general path decoded what the public decoder refused"
        return
    X, y = result
    assert X.shape[0] == len(payloads) and X.dtype == np.float32
    assert y is None or (y.shape == (len(payloads),) and y.dtype == np.float32)
    assert not is_error(general), general
    _assert_same(X, general[0])
    if y is not None:
        _assert_same(y, general[1])
    if len(set(map(len, payloads))) == 1:
        block = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(len(payloads), -1)
        fast = decode_fixed_block(block)
        if fast is not None:  # the vectorised path took it: it must agree with the generated class
            _assert_same(fast[0], general[0])


def check(case) -> None:
    kind, value = case
    (check_valid if kind == "valid" else check_payloads)(value)


TARGET = Target("record", st.tuples(st.just("valid"), dense_rows() | sparse_rows())
                | st.tuples(st.just("payloads"), payload_lists), check)


@CI
@given(dense_rows() | sparse_rows())
def test_encoded_rows_decode_to_the_same_arrays(rows):
    check_valid(rows)


# Finding: a sparse shape of 2^63 (uint64 on the wire) wrapped to a negative int64: ValueError from scipy.
_SHAPE_2_63 = b"\n\x18\n\x06values\x12\x0e\x12\x0c\x1a\n" + b"\x80" * 9 + b"\x01"
# ... and a shape of [2^32, 2^32] wrapped to 0 features: silently a (1, 0) matrix.
_SHAPE_2_32_SQUARED = b"\n\x18\n\x06values\x12\x0e\x12\x0c\x1a\n" + (b"\x80" * 4 + b"\x10") * 2


@CI
@given(payload_lists)
@example([_SHAPE_2_63])
def test_any_payload_is_a_typed_error_or_agreeing_arrays(payloads):
    check_payloads(payloads)


@pytest.mark.parametrize("payload", [_SHAPE_2_63, _SHAPE_2_32_SQUARED])
def test_a_shape_past_int64_is_refused_not_wrapped(payload):
    with pytest.raises(RecordDecodeError, match="more than 2\\^63-1"):
        records_to_arrays([payload])
