"""Request codecs, picked by the registry from Content-Type: encoded requests decode to the features sent;
any other body is a 4xx ``RequestError`` or finite float32 features, one row per record."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import example, given, strategies as st
from hypothesis.extra import numpy as hnp

from smlocal.data.protobuf import dense_to_records, sparse_to_records
from smlocal.data.recordio import encode_records
from smlocal.serving.codecs import CODECS, request_codec, response_codec
from tests.fuzz.harness import CI, Target, is_error, outcome
from tests.fuzz.mutations import fuzzed

# values past float32 become inf, as intended (and refused where finiteness matters): no warning noise
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
MEDIA_TYPES = sorted(CODECS)
_finite = st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def features(draw):
    """A request's features: dense float32 (n, d), or CSR for the sparse formats."""
    n, d = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    X = draw(hnp.arrays(np.float32, (n, d), elements=st.sampled_from([0.0]) | _finite))
    return sp.csr_matrix(X) if draw(st.booleans()) else X


def _instance(row, sparse: bool, shape: str) -> dict:
    if sparse:
        keys = np.flatnonzero(row).tolist()
        return {"data": {"features": {"keys": keys, "shape": [row.size], "values": row[keys].tolist()}}}
    if shape == "features":
        return {"features": row.tolist()}
    return {"data": {"features": {"values": row.tolist()}}, "configuration": {}}


def encode_request(media: str, X, shape: str = "features") -> bytes:
    """The body a client sends for ``X`` in ``media`` (the documented request shapes)."""
    sparse = sp.issparse(X)
    rows = X.toarray() if sparse else X
    if media == "text/csv":
        return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows).encode()
    if media == "application/x-recordio-protobuf":
        return encode_records(sparse_to_records(X) if sparse else dense_to_records(X))
    instances = [_instance(row, sparse, shape) for row in rows]
    if media == "application/json":
        return json.dumps({"instances": instances}).encode()
    return "".join(json.dumps(obj) + "\n" for obj in instances).encode()


def decode_request(body: bytes, content_type: str):
    """What ``POST /invocations`` does with a body before predicting."""
    codec, params = request_codec(content_type)
    return codec.decode(body, params)


# Numbers at the edges: past float32, past int64, past a double (json reads 10**400 as an int).
_edge_numbers = st.sampled_from([10**400, -(10**400), 2**63, 2**64, -2**63 - 1, 1e39, 1e308, 2**31])
_json = st.recursive(st.none() | st.booleans() | st.integers() | _edge_numbers | st.floats() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                         st.sampled_from(["instances", "features", "data", "values", "keys", "shape", "x"]),
                         inner, max_size=4), max_leaves=20)
# Instances near the request shapes: arbitrary values where the numbers, keys and shapes go.
_instances = st.one_of(
    st.lists(_json, max_size=4),
    st.lists(_json, max_size=4).map(lambda docs: [{"features": d} for d in docs]),
    st.lists(st.fixed_dictionaries({"keys": _json, "shape": _json, "values": _json}), min_size=1,
             max_size=3).map(lambda fs: [{"data": {"features": f}} for f in fs]),
)
_json_bodies = (_instances | _json).map(lambda instances: json.dumps({"instances": instances}).encode())
_json_lines = _instances.map(lambda instances: b"\n".join(json.dumps(obj).encode() for obj in instances))


@st.composite
def valid_cases(draw):
    media = draw(st.sampled_from(MEDIA_TYPES))
    X = draw(features())
    if media == "text/csv" and sp.issparse(X):
        X = X.toarray()
    shape = draw(st.sampled_from(["features", "data"]))
    return "valid", media, X, encode_request(media, X, shape)


@st.composite
def byte_cases(draw):
    media = draw(st.sampled_from(MEDIA_TYPES))
    valid = st.builds(encode_request, st.just(media), features(), st.sampled_from(["features", "data"]))
    if media == "application/json":
        valid = valid | _json_bodies
    elif media == "application/jsonlines":
        valid = valid | _json_lines
    return "bytes", media, None, draw(fuzzed(valid))


def check(case) -> None:
    kind, media, X, body = case
    got = outcome(lambda: decode_request(body, media), client_error=True)
    if kind == "valid":
        assert not is_error(got), got
        assert sp.issparse(got) == sp.issparse(X)
        np.testing.assert_array_equal(got.toarray() if sp.issparse(got) else got,
                                      X.toarray() if sp.issparse(X) else X)
        assert got.dtype == np.float32
        return
    if is_error(got):
        return
    data = got.data if sp.issparse(got) else got
    assert got.ndim == 2 and got.shape[0] >= 1 and data.dtype == np.float32
    assert np.isfinite(data).all()


TARGET = Target("codecs", valid_cases() | byte_cases(), check)


@CI
@given(valid_cases())
def test_encoded_requests_decode_to_the_features_sent(case):
    check(case)


@CI
@given(byte_cases())
# Findings: a JSON integer past a double's range, and a sparse shape past int64, were OverflowError (500).
@example(("bytes", "application/json", None, b'{"instances":[{"data":{"features":{"values":[1%s]}}}]}' % (b"0" * 400)))
@example(("bytes", "application/jsonlines", None, b'{"features":[1%s]}' % (b"0" * 400)))
@example(("bytes", "application/json", None,
          b'{"instances":[{"data":{"features":{"keys":[3],"shape":[9223372036854775808],"values":[1]}}}]}'))
def test_bad_bodies_are_a_4xx_or_finite_features(case):
    check(case)


@CI
@given(st.text(max_size=40) | st.sampled_from(MEDIA_TYPES).map(lambda m: m + "; charset=utf-8"))
def test_any_content_type_or_accept_header_picks_a_codec_or_is_a_4xx(header):
    request = outcome(lambda: request_codec(header), client_error=True)
    assert is_error(request) or request[0] in CODECS.values()
    response = outcome(lambda: response_codec(header), client_error=True)
    assert is_error(response) or response in CODECS.values()
