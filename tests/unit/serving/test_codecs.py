"""Each content type's decoder and encoder on its own; the real SDK writes the protobuf inputs."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import scipy.sparse as sp
from sagemaker.amazon.common import read_records, write_numpy_to_dense_tensor, write_spmatrix_to_sparse_tensor

from smlocal.errors import RequestError, UnsupportedMediaType
from smlocal.serving.codecs import csv_codec, json_codec, jsonlines_codec, protobuf_codec, request_codec, response_codec

X = np.array([[1.5, 16.0, 14.0, 23.0], [0.0, -2.25, 3.0, 1e-3]], np.float32)
BAD = "unable to evaluate payload provided: "


# ---------------------------------------------------------------- registry
@pytest.mark.parametrize("header, media", [
    (None, "application/json"), ("", "application/json"), ("text/csv", "text/csv"),
    ("text/csv; label_size=0", "text/csv"), ("TEXT/CSV;charset=utf-8", "text/csv"),
    ("application/jsonlines", "application/jsonlines"),
    ("application/x-recordio-protobuf", "application/x-recordio-protobuf"),
])
def test_request_codec(header, media):
    assert request_codec(header)[0].MEDIA_TYPE == media


def test_request_codec_keeps_params():
    assert request_codec("text/csv; label_size=0")[1] == {"label_size": "0"}


def test_unsupported_content_type_lists_supported():
    with pytest.raises(UnsupportedMediaType) as exc:
        request_codec("application/x-image")
    assert exc.value.http_status == 415
    for media in ("text/csv", "application/json", "application/jsonlines", "application/x-recordio-protobuf"):
        assert media in str(exc.value)


@pytest.mark.parametrize("accept, media", [
    (None, "application/json"), ("*/*", "application/json"), ("application/jsonlines", "application/jsonlines"),
    ("text/csv", "text/csv"), ("application/x-recordio-protobuf", "application/x-recordio-protobuf"),
    ("application/json; verbose=true", "application/json"),
    ("image/png, text/csv;q=0.5, application/jsonlines;q=0.9", "application/jsonlines"),
    ("text/csv;q=0, application/x-recordio-protobuf", "application/x-recordio-protobuf"),
])
def test_response_codec(accept, media):
    assert response_codec(accept).MEDIA_TYPE == media


def test_response_codec_default_and_unsupported():
    assert response_codec(None, default="text/csv").MEDIA_TYPE == "text/csv"
    with pytest.raises(UnsupportedMediaType, match="Accept 'image/png' is not supported.*text/csv"):
        response_codec("image/png")


# ---------------------------------------------------------------- CSV
def test_csv_decode():
    body = "1.5,16.0,14,23.0\r\n0,-2.25, 3 ,1e-3\n\n".encode()
    np.testing.assert_array_equal(csv_codec.decode(body), X)


@pytest.mark.parametrize("body, message", [
    (b"1,2\n3,x\n", "row 2, column 2: 'x' is not a number"),
    (b"1,2\n3\n", "row 2 has 1 values but row 1 has 2"),
    (b"1,2\n\n3,4\n", "row 2 is empty"),
    (b"1,,2\n", "row 1, column 2: '' is not a number"),
    (b"a,b\n1,2\n", "row 1, column 1: 'a' is not a number"),
    (b"1,2\n3,nan\n", "row 2 has a missing (NaN) or infinite value"),
    (b"1,inf\n", "row 1 has a missing (NaN) or infinite value"),
    (b"\n\n", "the payload holds no records"),
])
def test_csv_decode_errors_name_the_row(body, message):
    with pytest.raises(RequestError) as exc:
        csv_codec.decode(body)
    assert str(exc.value).startswith(BAD + message), str(exc.value)
    assert exc.value.http_status == 400


def test_csv_encode():
    cols = {"closest_cluster": np.array([1.0, 0.0], np.float32), "distance_to_cluster": np.array([3.0, 0.25], np.float32)}
    assert csv_codec.encode(cols) == b"1.0,3.0\n0.0,0.25\n"
    cols = {"score": np.array([[0.25, 0.75]], np.float32), "predicted_label": np.array([1.0], np.float32)}
    assert csv_codec.encode(cols) == b"0.25,0.75,1.0\n"


# ---------------------------------------------------------------- JSON
def test_json_decode_all_three_shapes():
    dense = {"instances": [{"features": X[0].tolist()}, {"data": {"features": {"values": X[1].tolist()}}}]}
    np.testing.assert_array_equal(json_codec.decode(json.dumps(dense).encode()), X)
    sparse = {"instances": [
        {"data": {"features": {"keys": [0, 3], "shape": [4], "values": [1.5, 23.0]}}, "configuration": {}},
        {"features": [0, 1, 0, 2]},
    ]}
    got = json_codec.decode(json.dumps(sparse).encode())
    assert sp.issparse(got) and got.dtype == np.float32
    np.testing.assert_array_equal(got.toarray(), [[1.5, 0, 0, 23], [0, 1, 0, 2]])


@pytest.mark.parametrize("doc, message", [
    (b"{not json", "the body is not valid JSON"),
    (b'{"instances": "\xff"}', "the body is not UTF-8"),
    (b"[[1, 2]]", 'expected a JSON object with an "instances" list'),
    (b'{"instances": [{"features": [1, 2]}, {"features": [1]}]}', "row 2 has 1 features but row 1 has 2"),
    (b'{"instances": [{"features": [1, "x"]}]}', "row 1: 'features' must be a flat list of numbers"),
    (b'{"instances": [{"features": [[1, 2]]}]}', "row 1: 'features' must be a flat list of numbers"),
    (b'{"instances": [{"features": 3}]}', "row 1: 'features' must be a list of numbers"),
    (b'{"instances": [{"features": [1, null]}]}', "row 1 has a missing (NaN) or infinite value"),
    (b'{"instances": [{"feature": [1]}]}', "row 1 has neither 'features' nor 'data.features.values'"),
    (b'{"instances": [7]}', "row 1 is not a JSON object"),
    (b'{"instances": [{"data": {"features": {"keys": [5], "shape": [4], "values": [1]}}}]}',
     "row 1 has key 5 outside shape [4]"),
    (b'{"instances": [{"data": {"features": {"keys": [1, 2], "shape": [4], "values": [1]}}}]}',
     "row 1 has 2 keys but 1 values"),
    (b'{"instances": [{"data": {"features": {"keys": [1], "values": [1]}}}]}', "row 1: a sparse record needs 'shape'"),
    (b'{"instances": [{"data": {"features": {"keys": [1.5], "shape": [4], "values": [1]}}}]}',
     "row 1: 'keys' must be a list of integer"),
    (b'{"instances": []}', "the payload holds no records"),
])
def test_json_decode_errors(doc, message):
    with pytest.raises(RequestError) as exc:
        json_codec.decode(doc)
    assert str(exc.value).startswith(BAD + message), str(exc.value)


def test_json_encode_key_order_and_float_repr():
    cols = {"score": np.array([0.9899773597717285, 0.5041388273239136], np.float32),
            "predicted_label": np.array([1, 1], np.int64)}
    assert json_codec.encode(cols) == (b'{"predictions": [{"score": 0.9899773597717285, "predicted_label": 1}, '
                                       b'{"score": 0.5041388273239136, "predicted_label": 1}]}')


# ---------------------------------------------------------------- JSON Lines
def test_jsonlines_round_trip():
    body = b'{"features": [1.5, 16.0, 14.0, 23.0]}\n{"data": {"features": {"values": [0, -2.25, 3, 0.001]}}}\n'
    np.testing.assert_array_equal(jsonlines_codec.decode(body), X)
    cols = {"closest_cluster": np.array([2.0], np.float32), "distance_to_cluster": np.array([0.5], np.float32)}
    assert jsonlines_codec.encode(cols) == b'{"closest_cluster": 2.0, "distance_to_cluster": 0.5}\n'


def test_jsonlines_errors_name_the_line():
    with pytest.raises(RequestError, match=r"^unable to evaluate payload provided: row 2 is not valid JSON"):
        jsonlines_codec.decode(b'{"features": [1]}\n{"features": [1}\n')
    with pytest.raises(RequestError, match="row 2 is empty"):
        jsonlines_codec.decode(b'{"features": [1]}\n \n{"features": [1]}')


# ---------------------------------------------------------------- RecordIO-protobuf
def sdk_dense(array) -> bytes:
    buf = io.BytesIO()
    write_numpy_to_dense_tensor(buf, array)
    return buf.getvalue()


def test_protobuf_decode_sdk_dense_and_sparse():
    np.testing.assert_array_equal(protobuf_codec.decode(sdk_dense(X)), X)
    csr = sp.csr_matrix(np.array([[0, 1.5, 0], [2, 0, 0]], np.float32))
    buf = io.BytesIO()
    write_spmatrix_to_sparse_tensor(buf, csr)
    got = protobuf_codec.decode(buf.getvalue())
    np.testing.assert_array_equal(got.toarray() if sp.issparse(got) else got, csr.toarray())


def test_protobuf_decode_runs_of_records():
    """Many equal dense rows (one run, decoded in place), equal-length sparse rows (a run the fast path
    declines) and a run followed by records of other lengths all decode like the SDK wrote them."""
    many = np.arange(40, dtype=np.float32).reshape(10, 4)
    np.testing.assert_array_equal(protobuf_codec.decode(sdk_dense(many)), many)
    sparse_rows = sp.csr_matrix(np.eye(6, dtype=np.float32))
    buf = io.BytesIO()
    write_spmatrix_to_sparse_tensor(buf, sparse_rows)
    np.testing.assert_array_equal(protobuf_codec.decode(buf.getvalue()).toarray(), sparse_rows.toarray())
    buf = io.BytesIO()
    write_spmatrix_to_sparse_tensor(buf, sp.csr_matrix(np.vstack([np.eye(5, 4), np.ones((1, 4))]).astype(np.float32)))
    np.testing.assert_array_equal(protobuf_codec.decode(buf.getvalue()).toarray(),
                                  np.vstack([np.eye(5, 4), np.ones((1, 4))]))
    with pytest.raises(RequestError, match=r"^unable to evaluate payload provided: the payload holds no records$"):
        protobuf_codec.decode(b"")


def test_protobuf_decode_errors():
    with pytest.raises(RequestError, match=r"^unable to evaluate payload provided: .*request body"):
        protobuf_codec.decode(b"\x01\x02\x03\x04garbage!")
    with pytest.raises(RequestError, match=r"^unable to evaluate payload provided: .*(NaN)"):
        protobuf_codec.decode(sdk_dense(np.array([[1.0, np.nan]], np.float32)))


def test_protobuf_encode_reads_back_with_sdk():
    cols = {"score": np.array([[0.1, 0.9], [0.6, 0.4]], np.float32), "predicted_label": np.array([1.0, 0.0], np.float32)}
    records = read_records(io.BytesIO(protobuf_codec.encode(cols)))
    assert len(records) == 2
    assert list(records[0].label["score"].float32_tensor.values) == pytest.approx([0.1, 0.9])
    assert list(records[1].label["predicted_label"].float32_tensor.values) == [0.0]
    assert len(records[0].features) == 0


@pytest.mark.parametrize("codec, template", [
    (json_codec, b'{"instances": %s}'),
    (jsonlines_codec, b'{"features": %s}'),
])
def test_deeply_nested_json_is_a_400_not_a_recursion_error(codec, template):
    depth = 100_000
    with pytest.raises(RequestError, match=r"^unable to evaluate payload provided: .*nested too deeply"):
        codec.decode(template % (b"[" * depth + b"]" * depth))
