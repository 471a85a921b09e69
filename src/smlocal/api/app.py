"""The WSGI application: one port, dispatched by request to SageMaker, Logs, Runtime or moto.

- ``X-Amz-Target: SageMaker.<Op>``      -> this package's handlers (JSON 1.1)
- ``X-Amz-Target: Logs_20140328.<Op>``  -> CloudWatch Logs reads over the jobs' log files
- ``POST /endpoints/<name>/invocations`` signed for ``sagemaker`` -> the endpoint's server
- anything else (S3, STS, ...)          -> moto's server app, which picks the service from the request
"""
from __future__ import annotations

import logging
import re
from typing import Callable

from werkzeug.wrappers import Request, Response

from smlocal.api.protocol import JSON_11, ApiError, check_request, encode, parse_body

log = logging.getLogger(__name__)
_INVOKE = re.compile(r"^/endpoints/([^/]+)/invocations$")
_SCOPE = re.compile(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/aws4_request")

Handler = Callable[[dict], dict]


def signed_service(request: Request) -> str | None:
    """The service a SigV4 request was signed for (``s3``, ``sagemaker``...), from its credential scope."""
    match = _SCOPE.search(request.headers.get("Authorization", ""))
    return match.group(1) if match else None


def json_response(payload: dict, status: int = 200, content_type: str = JSON_11) -> Response:
    return Response(encode(payload), status=status, content_type=content_type)


def error_response(error: ApiError, content_type: str = JSON_11) -> Response:
    response = json_response(error.body(), error.status, content_type)
    response.headers["x-amzn-ErrorType"] = error.code
    return response


class ApiApp:
    def __init__(self, sagemaker: dict[str, Handler], logs: dict[str, Handler], invoke, fallback):
        self.sagemaker, self.logs, self.invoke, self.fallback = sagemaker, logs, invoke, fallback

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        service, _, operation = target.partition(".")
        if service == "SageMaker":
            return self._json(environ, start_response, "sagemaker", self.sagemaker, operation)
        if service == "Logs_20140328":
            return self._json(environ, start_response, "logs", self.logs, operation)
        path = environ.get("PATH_INFO", "")
        match = _INVOKE.match(path)
        if match and environ.get("REQUEST_METHOD") == "POST":
            request = Request(environ)
            if signed_service(request) in (None, "sagemaker"):
                return self.invoke(request, match.group(1))(environ, start_response)
        return self.fallback(environ, start_response)

    def _json(self, environ, start_response, service: str, handlers: dict[str, Handler], operation: str):
        request = Request(environ)
        try:
            handler = handlers.get(operation)
            if handler is None:
                raise ApiError("UnknownOperationException", f"Operation {operation or '(none)'} is not supported "
                                                            f"by smlocal's {service} endpoint.")
            body = parse_body(request.get_data())
            check_request(service, operation, body)
            response = json_response(handler(body))
        except ApiError as exc:
            response = error_response(exc)
        except Exception as exc:  # noqa: BLE001 - a bug answers 500 and the server keeps serving
            log.exception("%s.%s failed", service, operation)
            response = error_response(ApiError("InternalFailure", f"{type(exc).__name__}: {exc}", 500))
        return response(environ, start_response)
