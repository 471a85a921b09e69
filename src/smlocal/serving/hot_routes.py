"""``GET /ping`` and ``POST /invocations`` of the built-ins as a bare WSGI layer in front of flask.

A flask request costs more than the built-in codecs and model do on a small payload (request context,
routing, signals, response object). This layer answers the two routes a client calls per request with
the bytes flask gives (same status line, headers in the same order, same bodies and error texts, all
through ``serving.app``'s functions) and hands every other request to the flask app unchanged.
User handlers (script mode) keep flask: their code may use ``flask.request``.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

from werkzeug.exceptions import HTTPException

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]
Invoke = Callable[[dict], tuple[bytes, str]]  # environ -> (response body, content type); raises on errors
ErrorAnswer = Callable[[Exception], WsgiApp]  # an error -> its response, as flask's error handler gives it


class HotRoutes:
    """WSGI middleware: the built-in /ping and /invocations here, anything else to ``flask_wsgi``."""

    def __init__(self, flask_wsgi: WsgiApp, invoke: Invoke, error_answer: ErrorAnswer,
                 ping_header: Optional[tuple[str, str]] = None):
        self._next = flask_wsgi
        self._invoke = invoke
        self._error_answer = error_answer
        # /ping's answer never changes: build its headers once
        self._ping_headers = [("Content-Type", "text/plain"), ("Content-Length", "0")]
        if ping_header is not None:
            self._ping_headers.append(ping_header)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        if path == "/invocations" and method == "POST":
            return self._invocations(environ, start_response)
        if path == "/ping" and method == "GET":
            start_response("200 OK", list(self._ping_headers))
            return [b""]
        return self._next(environ, start_response)

    def _invocations(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            payload, media = self._invoke(environ)
        except HTTPException as exc:  # werkzeug's own answer, as flask gives it (a client gone mid-body)
            return exc(environ, start_response)
        except Exception as exc:  # noqa: BLE001 - every error becomes its HTTP answer, as in flask
            return self._error_answer(exc)(environ, start_response)
        start_response("200 OK", [("Content-Type", media), ("Content-Length", str(len(payload)))])
        return [payload]
