"""The user's inference.py handlers: finding and importing the script, and one request through
model_fn/input_fn/predict_fn/output_fn or transform_fn, with the built-in defaults for the ones missing."""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from smlocal.errors import CustomerError, RequestError, UserHandlerError
from smlocal.serving.handlers import Handlers, builtin_predict, find_script, load_handlers, user_invocations


def script(folder, text: str, name: str = "inference.py"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


class Doubler:
    """A model object the way a scikit-learn estimator looks to the handlers: ``predict(X)``."""

    def predict(self, X):
        return np.asarray(X).sum(axis=1) * 2


# ------------------------------------------------------------------------------------------- finding


def test_find_script_in_the_model_dir_then_code_then_the_code_dir(tmp_path):
    model_dir, code_dir = tmp_path / "model", tmp_path / "opt_code"
    model_dir.mkdir()
    assert find_script(model_dir, code_dir, environ={}) is None
    in_code_dir = script(code_dir, "")
    assert find_script(model_dir, code_dir, environ={}) == in_code_dir
    in_model_code = script(model_dir / "code", "")
    assert find_script(model_dir, code_dir, environ={}) == in_model_code
    at_model_root = script(model_dir, "")
    assert find_script(model_dir, code_dir, environ={}) == at_model_root


def test_find_script_prefers_sagemaker_program(tmp_path):
    model_dir = tmp_path / "model"
    script(model_dir / "code", "")
    serve = script(model_dir / "code", "", name="serve.py")
    assert find_script(model_dir, tmp_path / "none", environ={"SAGEMAKER_PROGRAM": "serve.py"}) == serve
    assert find_script(model_dir, tmp_path / "none", environ={"SAGEMAKER_PROGRAM": "absent.py"}) == \
        model_dir / "code" / "inference.py"


# ------------------------------------------------------------------------------------------ loading


def test_load_handlers_keeps_the_callables_defined_and_imports_siblings(tmp_path):
    script(tmp_path, "FACTOR = 3\n", name="shared_factor_for_test.py")
    path = script(tmp_path, """
        from shared_factor_for_test import FACTOR

        def model_fn(model_dir):
            return {"dir": model_dir, "factor": FACTOR}

        def predict_fn(data, model):
            return data * model["factor"]

        output_fn = "not callable"
    """)
    handlers = load_handlers(path)
    assert handlers.script == path
    assert handlers.model_fn("/m") == {"dir": "/m", "factor": 3}
    assert handlers.predict_fn is not None
    assert handlers.input_fn is None and handlers.output_fn is None and handlers.transform_fn is None


def test_a_script_without_handlers_is_a_customer_error(tmp_path):
    path = script(tmp_path, "x = 1\n")
    with pytest.raises(CustomerError, match="defines none of: model_fn, input_fn, predict_fn, output_fn, transform_fn"):
        load_handlers(path)


def test_a_script_that_fails_to_import_is_named(tmp_path):
    path = script(tmp_path, "raise RuntimeError('no GPU here')\n")
    with pytest.raises(CustomerError) as info:
        load_handlers(path)
    assert str(info.value) == f"Cannot import the inference script {path}: RuntimeError: no GPU here"
    assert info.value.exit_code == 2


# ------------------------------------------------------------------------------------------ requests


def test_transform_fn_answers_alone(tmp_path):
    seen = []

    def transform_fn(model, body, content_type, accept):
        seen.append((model, body, content_type, accept))
        return json.dumps({"n": len(body)}), "application/x-mine"

    handlers = Handlers(script=tmp_path / "inference.py", transform_fn=transform_fn,
                        input_fn=lambda *_: pytest.fail("input_fn must not run when transform_fn is defined"))
    body, media = user_invocations(b"abc", "text/plain", "application/json", "MODEL", handlers, "application/json")
    assert (body, media) == (b'{"n": 3}', "application/x-mine")
    assert seen == [("MODEL", b"abc", "text/plain", "application/json")]


def test_input_predict_output_chain(tmp_path):
    handlers = Handlers(
        script=tmp_path / "inference.py",
        input_fn=lambda body, content_type: [int(v) for v in body.split(b",")],
        predict_fn=lambda data, model: [v * model for v in data],
        output_fn=lambda prediction, accept: "|".join(map(str, prediction)),
    )
    body, media = user_invocations(b"1,2,3", "text/csv", "text/plain", 10, handlers, "application/json")
    assert (body, media) == (b"10|20|30", "text/plain")


def test_output_fn_without_an_accept_answers_json(tmp_path):
    handlers = Handlers(script=tmp_path / "inference.py", predict_fn=lambda data, model: data,
                        output_fn=lambda prediction, accept: b"raw")
    assert user_invocations(b"1,2\n", "text/csv", None, None, handlers, "application/json") == \
        (b"raw", "application/json")


def test_builtin_decoding_and_json_output_around_a_user_model(tmp_path):
    handlers = Handlers(script=tmp_path / "inference.py", model_fn=lambda model_dir: Doubler())
    body, media = user_invocations(b"1,2\n3,4\n", "text/csv", "application/json", Doubler(), handlers,
                                   "application/json")
    assert media == "application/json"
    assert json.loads(body) == {"predictions": [6.0, 14.0]}


def test_builtin_csv_output_is_one_row_per_prediction(tmp_path):
    handlers = Handlers(script=tmp_path / "inference.py", predict_fn=lambda data, model: model.predict(data))
    body, media = user_invocations(b"1,2\n3,4\n", "text/csv", "text/csv", Doubler(), handlers, "application/json")
    assert (body, media) == (b"6.0\n14.0\n", "text/csv")
    handlers = Handlers(script=tmp_path / "inference.py", predict_fn=lambda data, model: np.array([[1, 2], [3, 4]]))
    assert user_invocations(b"1\n", "text/csv", "text/csv", None, handlers, "application/json")[0] == b"1,2\n3,4\n"


def test_user_exceptions_answer_500_naming_the_handler(tmp_path):
    def predict_fn(data, model):
        raise KeyError("label")

    handlers = Handlers(script=tmp_path / "inference.py", predict_fn=predict_fn)
    with pytest.raises(UserHandlerError) as info:
        user_invocations(b"1,2\n", "text/csv", "application/json", None, handlers, "application/json")
    assert str(info.value) == "predict_fn failed: KeyError: 'label'"
    assert info.value.http_status == 500


def test_smlocal_errors_from_user_code_keep_their_type(tmp_path):
    def input_fn(body, content_type):
        raise CustomerError("bad body")

    handlers = Handlers(script=tmp_path / "inference.py", input_fn=input_fn)
    with pytest.raises(CustomerError, match="bad body"):
        user_invocations(b"x", "text/csv", None, None, handlers, "application/json")


def test_builtin_predict_needs_outputs_or_predict():
    assert builtin_predict(Doubler(), np.array([[1.0, 1.0]])).tolist() == [4.0]
    with pytest.raises(RequestError, match=r"the model object \(dict\) has no predict\(\); define predict_fn"):
        builtin_predict({}, np.array([[1.0]]))
