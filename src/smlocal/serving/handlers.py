"""Script-mode inference: the user's ``inference.py`` handlers in place of the built-in defaults.

SageMaker's framework containers look for ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn`` (or one
``transform_fn``) in the user's inference script. Whatever the script does not define falls back to the
built-in behaviour: artifact loader, request codecs, the built-in model's prediction, response codecs.
An exception inside user code answers 500 with its message; the server keeps serving.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional

import numpy as np

from smlocal.errors import CustomerError, SmlocalError, UserHandlerError
from smlocal.serving.codecs import request_codec, response_codec
from smlocal.serving.codecs.base import bad_payload
from smlocal.serving.predict import response_columns

SCRIPT_NAME = "inference.py"
HANDLER_NAMES = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")


@dataclass(frozen=True)
class Handlers:
    script: Path
    model_fn: Optional[Callable] = None
    input_fn: Optional[Callable] = None
    predict_fn: Optional[Callable] = None
    output_fn: Optional[Callable] = None
    transform_fn: Optional[Callable] = None


def find_script(model_dir: Path, code_dir: Path, environ=None) -> Optional[Path]:
    """``inference.py`` (or $SAGEMAKER_PROGRAM) in the model dir, its ``code/`` folder, or /opt/ml/code."""
    env = os.environ if environ is None else environ
    names = [env["SAGEMAKER_PROGRAM"]] if env.get("SAGEMAKER_PROGRAM") else []
    names.append(SCRIPT_NAME)
    for folder in (model_dir, model_dir / "code", code_dir):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _import(script: Path) -> ModuleType:
    sys.path.insert(0, str(script.parent))  # so the script can import its sibling modules
    spec = importlib.util.spec_from_file_location(f"smlocal_user_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any error in user code is reported with the file name
        raise CustomerError(f"Cannot import the inference script {script}: {type(exc).__name__}: {exc}") from exc
    return module


def load_handlers(script: Path) -> Handlers:
    module = _import(script)
    found = {name: getattr(module, name) for name in HANDLER_NAMES if callable(getattr(module, name, None))}
    if not found:
        raise CustomerError(f"The inference script {script} defines none of: {', '.join(HANDLER_NAMES)}.")
    return Handlers(script=script, **found)


def _user_call(handler: Callable, *args: Any) -> Any:
    try:
        return handler(*args)
    except SmlocalError:
        raise
    except Exception as exc:  # noqa: BLE001 - user code may raise anything; answer 500 and keep serving
        raise UserHandlerError(f"{handler.__name__} failed: {type(exc).__name__}: {exc}") from exc


def _default_output(prediction: Any, accept: Optional[str], default_accept: str) -> tuple[bytes, str]:
    """Built-in response codecs for column dicts; JSON (or CSV) of arrays and plain values otherwise."""
    encoder = response_codec(accept, default=default_accept)
    if isinstance(prediction, dict) and all(isinstance(v, np.ndarray) for v in prediction.values()):
        return encoder.encode(prediction), encoder.MEDIA_TYPE
    if encoder.MEDIA_TYPE == "text/csv":
        rows = np.atleast_2d(np.asarray(prediction))
        if rows.shape[0] == 1 and np.asarray(prediction).ndim == 1:
            rows = rows.T
        return ("\n".join(",".join(str(v) for v in row) for row in rows.tolist()) + "\n").encode(), "text/csv"
    value = prediction.tolist() if isinstance(prediction, np.ndarray) else prediction
    return json.dumps({"predictions": value}).encode(), "application/json"


def _as_response(result: Any, accept: Optional[str]) -> tuple[bytes, str]:
    """output_fn / transform_fn may return bytes, str, or (body, content_type)."""
    body, media = (result if isinstance(result, tuple) and len(result) == 2 else (result, accept or "application/json"))
    return (body.encode() if isinstance(body, str) else bytes(body)), media


def builtin_predict(model: Any, data: Any) -> Any:
    """The built-in prediction for a model served with user handlers that do not define predict_fn."""
    if hasattr(model, "outputs"):
        return response_columns(model, data)
    if hasattr(model, "predict"):
        return model.predict(data)
    raise bad_payload(f"the model object ({type(model).__name__}) has no predict(); define predict_fn")


def user_invocations(body: bytes, content_type: Optional[str], accept: Optional[str], model: Any,
                     handlers: Handlers, default_accept: str) -> tuple[bytes, str]:
    """One request through the user's handlers, built-in defaults for the ones not defined."""
    if handlers.transform_fn is not None:
        return _as_response(_user_call(handlers.transform_fn, model, body, content_type, accept), accept)
    if handlers.input_fn is not None:
        data = _user_call(handlers.input_fn, body, content_type)
    else:
        decoder, params = request_codec(content_type)
        data = decoder.decode(body, params)
    if handlers.predict_fn is not None:
        prediction = _user_call(handlers.predict_fn, data, model)
    else:
        prediction = builtin_predict(model, data)
    if handlers.output_fn is not None:
        return _as_response(_user_call(handlers.output_fn, prediction, accept), accept)
    return _default_output(prediction, accept, default_accept)
