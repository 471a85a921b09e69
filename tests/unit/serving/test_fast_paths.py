"""The serving fast paths give the bytes the general paths give: CSV numbers (orjson), JSON rows (templates),
and the bare WSGI /ping and /invocations in front of flask (same status, headers, bodies, error texts)."""
from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from smlocal.artifacts.kmeans import KMeansModel
from smlocal.serving.app import create_app
from smlocal.serving.codecs import csv_codec, json_codec, jsonlines_codec
from smlocal.serving.codecs.json_codec import rows
from smlocal.serving.codecs.numbers import json_row_texts, json_rows, plain_csv_rows, plain_csv_values
from smlocal.serving.config import PING_TOKEN_HEADER, ServingConfig
from smlocal.serving.hot_routes import HotRoutes

RNG = np.random.default_rng(7)
MODEL = KMeansModel(np.array([[0, 0, 0], [10, 10, 10]], np.float32))


def general_csv(body: bytes) -> np.ndarray:
    """What csv_codec parsed every body with before the fast path: float() of each field, cast to float32."""
    lines = body.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return np.array(b",".join(lines).split(b","), dtype=np.float32).reshape(len(lines), -1)


@pytest.mark.parametrize("fmt", ["%r", "%.3f", "%.12e", "%.30g", "%d", "%.9E"])
def test_plain_csv_numbers_take_the_fast_path_and_read_as_float_does(fmt):
    X = RNG.normal(size=(40, 6)) * 10.0 ** RNG.integers(-40, 38, size=(40, 1))
    body = "\n".join(",".join(fmt % (int(v) if fmt == "%d" else v) for v in row) for row in X.tolist()).encode()
    assert plain_csv_values(b",".join(body.splitlines()), X.size) is not None  # the fast paths are taken
    assert plain_csv_rows(body) is not None and plain_csv_rows(body + b"\n") is not None
    got, want = csv_codec.decode(body), general_csv(body)
    assert np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("body", [b"-0,1", b"-0.0,-0", b" 1 , 2 \n3,\t4\n\n", b"1.,2", b"+1,.5", b"1_0,2",
                                  b"123456789012345678901234567890,1", b"1" + b"0" * 30 + b",1e-400", b"-0e1,-0.5,0"])
def test_fields_json_reads_otherwise_keep_float_semantics(body):
    got, want = csv_codec.decode(body), general_csv(body)
    assert np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want))  # -0 stays -0.0


@pytest.mark.parametrize("body, message", [
    (b"1,[2]", "row 1, column 2: '[2]' is not a number"),
    (b"1,2\n3,\"4\"", "row 2, column 2: '\"4\"' is not a number"),
    (b"1,,2", "row 1, column 2: '' is not a number"),
    (b"1,2\n1e39,1", "row 2 has a missing (NaN) or infinite value"),
    (b"1,nan", "row 1 has a missing (NaN) or infinite value"),
    (b"1," + b"9" * 400, "row 1 has a missing (NaN) or infinite value"),
])
def test_bad_fields_keep_their_messages(body, message):
    with pytest.raises(Exception, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        csv_codec.decode(body)


@pytest.mark.parametrize("body, expected", [
    (b"1,2\n3", "row 2 has 1 values but row 1 has 2"),
    (b"1\n2,3", "row 2 has 2 values but row 1 has 1"),
    (b"1,2,3\n4,5\n6,7,8", "row 2 has 2 values but row 1 has 3"),
    (b"1,2\n3,4,", "row 2 has 3 values but row 1 has 2"),
    (b"1,,2\n3,4", "row 2 has 2 values but row 1 has 3"),
    (b"1,2\n\n3,4", "row 2 is empty; send one record per line"),
    (b"\n1,2", "row 1 is empty; send one record per line"),
    (b"1,nan", "row 1 has a missing (NaN) or infinite value"),
    (b"1,2\n1e39,1", "row 2 has a missing (NaN) or infinite value"),
    (b"1,2\r\n3,4", [[1.0, 2.0], [3.0, 4.0]]),
    (b"-0,1\n2,3", [[-0.0, 1.0], [2.0, 3.0]]),
])
def test_whole_body_path_leaves_other_bodies_to_the_line_paths(body, expected):
    """Ragged rows, blank lines, CR, a -0 field, NaN or overflow: the whole-body path declines and the
    line-by-line paths decide, with the values or the message they always gave."""
    assert plain_csv_rows(body) is None
    if isinstance(expected, str):
        with pytest.raises(Exception, match=re.escape(expected)):
            csv_codec.decode(body)
        return
    got = csv_codec.decode(body)
    assert np.array_equal(got, expected) and np.array_equal(np.signbit(got), np.signbit(expected))


def test_whole_body_path_reads_every_width_and_length():
    for n, d in [(1, 1), (1, 7), (3, 1), (100, 10), (2, 300)]:
        X = RNG.normal(size=(n, d)).astype(np.float32)
        body = "\n".join(",".join(repr(float(v)) for v in row) for row in X.tolist()).encode()
        got = plain_csv_rows(body)
        assert got is not None and got.dtype == np.float32 and np.array_equal(got, X)


def random_columns(n: int, classes: int) -> dict:
    score = (RNG.normal(size=(n, classes)) * 10.0 ** RNG.integers(-12, 30)).astype(np.float32)
    return {"score": score[:, 0] if classes == 1 else score,
            "predicted_label": RNG.integers(0, 3, n).astype(np.float32),
            "odd %r name": RNG.random(n).astype(np.float32)}


@pytest.mark.parametrize("n, classes", [(0, 1), (1, 1), (17, 1), (5, 3)])
def test_json_rows_are_json_dumps_bytes(n, classes):
    columns = random_columns(n, classes)
    assert json_row_texts(columns) is not None
    assert json_codec.encode(columns) == json.dumps({"predictions": rows(columns)}).encode()
    assert jsonlines_codec.encode(columns) == "".join(json.dumps(r) + "\n" for r in rows(columns)).encode()


@pytest.mark.parametrize("n, classes", [(0, 1), (1, 1), (17, 1), (1, 3), (9, 4)])
def test_json_rows_of_plain_names_are_json_dumps_bytes(n, classes):
    """Names without escapes, values in 1e-4..1e16 or 0: orjson prints each column once (the serving hot path)."""
    score = (RNG.uniform(1e-4, 1e3, size=(n, classes)) * RNG.choice([-1, 1, 0], size=(n, classes))).astype(np.float32)
    columns = {"score": score[:, 0] if classes == 1 else score,
               "predicted_label": RNG.integers(0, 3, n).astype(np.float32),
               "distance_to_cluster": RNG.uniform(1e-4, 1e15, n).astype(np.float32)}
    assert json_rows(columns) is not None  # the orjson path is taken
    assert json_codec.encode(columns) == json.dumps({"predictions": rows(columns)}).encode()
    small = {"score": np.array([5e-5, 1.0], np.float32)}  # 5e-05: orjson would print 5e-5
    assert json_codec.encode(small) == json.dumps({"predictions": rows(small)}).encode()


def test_non_finite_or_non_float_columns_print_as_json_dumps_does():
    for columns in ({"a": np.array([np.nan, 1.0], np.float32)}, {"a": np.array([1, 2])},
                    {"a": np.array([True, False])}):
        assert json_row_texts(columns) is None
        assert json_codec.encode(columns) == json.dumps({"predictions": rows(columns)}).encode()


def answer(wsgi, method="POST", path="/invocations", body=b"", headers=None, cut=0):
    """(status, headers, body) of one request; ``cut`` bytes of the body never arrive."""
    environ = EnvironBuilder(path=path, method=method, data=body, headers=headers or {}).get_environ()
    environ["wsgi.input"] = io.BytesIO(body[:len(body) - cut])
    app_iter, status, response_headers = run_wsgi_app(wsgi, environ)
    return status, list(response_headers.items()), b"".join(app_iter)


class Broken(KMeansModel):
    def outputs(self, X):
        raise ZeroDivisionError("boom")


CSV = {"Content-Type": "text/csv"}
REQUESTS = [
    dict(body=b"1,2,3\n9,9,9", headers={**CSV, "Accept": "application/json"}),
    dict(body=b"1,2,3", headers={**CSV, "Accept": "text/csv"}),
    dict(body=json.dumps({"instances": [{"features": [1, 2, 3]}]}).encode(),
         headers={"Content-Type": "application/json"}),
    dict(body=b"1,x,3", headers=CSV),
    dict(body=b"1,2", headers=CSV),
    dict(body=b"", headers=CSV),
    dict(body=b"1,2,3", headers={"Content-Type": "image/png"}),
    dict(body=b"1,2,3", headers={**CSV, "Accept": "image/png"}),
    dict(body=b"1," * 600_000, headers=CSV),  # over the 1 MB limit: 413
    dict(body=b"1,2,3\n4,5,6", headers=CSV, cut=4),  # the client stops mid-body: werkzeug's 400
    dict(method="GET", path="/ping"),
    dict(method="HEAD", path="/ping"),
    dict(method="GET", path="/invocations"),
    dict(method="GET", path="/nope"),
    dict(method="GET", path="/execution-parameters"),
]


@pytest.mark.parametrize("model", [MODEL, Broken(MODEL.centers)], ids=["model", "broken-model"])
@pytest.mark.parametrize("request_", REQUESTS, ids=range(len(REQUESTS)))
def test_hot_routes_answer_the_bytes_flask_answers(model, request_):
    app = create_app(model, ServingConfig(max_payload_mb=1, ping_token="tok"))
    assert isinstance(app.wsgi_app, HotRoutes)
    flask_only = app.wsgi_app._next  # the flask app's own WSGI callable, behind the hot routes
    assert answer(app.wsgi_app, **request_) == answer(flask_only, **request_)


def test_ping_token_and_script_mode_keep_flask():
    status, headers, _ = answer(create_app(MODEL, ServingConfig(ping_token="tok")), method="GET", path="/ping")
    assert status == "200 OK" and (PING_TOKEN_HEADER, "tok") in headers

    from smlocal.serving.handlers import Handlers
    scripted = create_app(MODEL, handlers=Handlers(script=None, predict_fn=lambda data, model: data))
    assert not isinstance(scripted.wsgi_app, HotRoutes)  # user code may use flask.request
