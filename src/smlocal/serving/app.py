"""The HTTP layer: a pure ``invocations`` function and the flask app factory around it.

Errors are typed (``smlocal.errors``) and carry their HTTP status; ``create_app`` maps them to a
response in one error handler, so a bad request never takes a worker down.
"""
from __future__ import annotations

import json
import logging
from typing import Optional

import flask
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import get_content_length, get_input_stream

from smlocal.artifacts.loader import Model
from smlocal.errors import PayloadTooLarge, RequestTimeout, SmlocalError
from smlocal.serving.codecs import request_codec, response_codec
from smlocal.serving.codecs.base import bad_payload
from smlocal.serving.config import PING_TOKEN_HEADER, ServingConfig
from smlocal.serving.handlers import Handlers, user_invocations
from smlocal.serving.hot_routes import HotRoutes
from smlocal.serving.predict import response_columns

log = logging.getLogger("smlocal.serving")
_DRAIN_LIMIT = 128 * 1024 * 1024  # read (and drop) at most this much of an oversized body
_CHUNK = 1024 * 1024


def too_large(size: int, config: ServingConfig) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The payload is {size} bytes, over the {config.max_payload_mb} MB limit "
        f"(SAGEMAKER_MAX_PAYLOAD_IN_MB); split it into smaller requests."
    )


def invocations(body: bytes, content_type: Optional[str], accept: Optional[str], model: Model,
                config: Optional[ServingConfig] = None, handlers: Optional[Handlers] = None) -> tuple[bytes, str]:
    """One ``POST /invocations``: request bytes -> (response bytes, response content type)."""
    config = config or ServingConfig()
    if len(body) > config.max_payload_bytes:
        raise too_large(len(body), config)
    if not body.strip():
        raise bad_payload("the request body is empty")
    if handlers is not None:
        return user_invocations(body, content_type, accept, model, handlers, config.default_accept)
    encoder = response_codec(accept, default=config.default_accept)
    decoder, params = request_codec(content_type)
    features = decoder.decode(body, params)
    return encoder.encode(response_columns(model, features)), encoder.MEDIA_TYPE


def execution_parameters(config: ServingConfig) -> dict:
    return {"MaxConcurrentTransforms": config.workers, "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": config.max_payload_mb}


def read_body(environ: dict, config: ServingConfig) -> bytes:
    """The request body; a client that stops sending it (the server's read timeout) gets a 408."""
    try:
        return _read_limited(environ, config)
    except OSError as exc:  # the socket's read timeout, or the client went away mid-body
        raise RequestTimeout(f"The request body did not arrive in full ({type(exc).__name__}: {exc}); "
                             "send the number of bytes that Content-Length says.") from None


def _read_limited(environ: dict, config: ServingConfig) -> bytes:
    """The request body, refusing more than the payload limit without buffering it all.

    werkzeug's stream, as ``flask.request.stream`` (no MAX_CONTENT_LENGTH) reads it: it stops at
    Content-Length and raises ``ClientDisconnected`` (400) when the body ends before it.
    """
    limit = config.max_payload_bytes
    declared = get_content_length(environ)
    stream = get_input_stream(environ)
    if declared is not None and declared > limit:
        # Drain what the client sends (bounded) so it reads our 413 instead of a connection reset.
        remaining = min(declared, _DRAIN_LIMIT)
        while remaining > 0:
            chunk = stream.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
        raise too_large(declared, config)
    body = stream.read(limit + 1) if declared is None else stream.read()
    if len(body) > limit:
        raise too_large(len(body), config)
    return body


def error_response(exc: Exception) -> flask.Response:
    """The answer to an error: typed errors carry their status; anything else is a logged 500."""
    if isinstance(exc, SmlocalError):
        if exc.http_status >= 500:
            log.error("invocation failed: %s", exc)
        return flask.Response(str(exc) + "\n", status=exc.http_status, content_type="text/plain")
    log.exception("invocation failed with an unexpected error")
    return flask.Response(f"internal error: {type(exc).__name__}: {exc}\n", status=500, content_type="text/plain")


def create_app(model: Model, config: Optional[ServingConfig] = None,
               handlers: Optional[Handlers] = None) -> flask.Flask:
    """A flask app answering /ping, /invocations and /execution-parameters for ``model``.

    ``handlers``: the user's inference.py functions (script mode), used in place of the defaults.
    """
    config = config or ServingConfig()
    app = flask.Flask("smlocal.serving")

    @app.get("/ping")
    def ping():
        response = flask.Response(b"", status=200, content_type="text/plain")
        if config.ping_token:
            response.headers[PING_TOKEN_HEADER] = config.ping_token
        return response

    @app.get("/execution-parameters")
    def execution_params():
        return flask.Response(json.dumps(execution_parameters(config)), status=200, content_type="application/json")

    @app.post("/invocations")
    def invoke():
        request = flask.request
        body = read_body(request.environ, config)
        payload, media = invocations(body, request.headers.get("Content-Type"), request.headers.get("Accept"),
                                     model, config, handlers)
        return flask.Response(payload, status=200, content_type=media)

    @app.errorhandler(Exception)
    def any_error(exc: Exception):
        if isinstance(exc, HTTPException):  # 404, 405... keep werkzeug's answer
            return exc
        return error_response(exc)  # the one place where errors become HTTP statuses

    if handlers is None:  # the built-ins' hot routes skip flask's per-request machinery (same bytes)
        def invoke_builtin(environ: dict) -> tuple[bytes, str]:
            return invocations(read_body(environ, config), environ.get("CONTENT_TYPE"),
                               environ.get("HTTP_ACCEPT"), model, config)

        token = (PING_TOKEN_HEADER, config.ping_token) if config.ping_token else None
        app.wsgi_app = HotRoutes(app.wsgi_app, invoke_builtin, error_response, token)
    return app
