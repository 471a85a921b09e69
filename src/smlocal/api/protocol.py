"""AWS JSON 1.1 protocol: typed API errors, request checks against botocore's model, JSON responses.

Requests are checked against the same service model botocore clients are generated from, so a
missing required field or a value of the wrong type is answered as the service answers it
(``ValidationException`` / ``SerializationException`` naming the field) and the server stays up.
Timestamps travel as epoch seconds, the JSON 1.1 wire format; records keep them the same way.
"""
from __future__ import annotations

import functools
import json
import time
from typing import Any

ACCOUNT = "123456789012"  # moto's default account: ARNs and STS answers agree
JSON_11 = "application/x-amz-json-1.1"


class ApiError(Exception):
    """An error answered in AWS's JSON error shape: ``{"__type": code, "message": ...}``."""

    def __init__(self, code: str, message: str, status: int = 400, **extra):
        super().__init__(message)
        self.code, self.message, self.status, self.extra = code, message, status, extra

    def body(self) -> dict:
        return {"__type": self.code, "message": self.message, **self.extra}


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def not_found(message: str) -> ApiError:
    return ApiError("ResourceNotFound", message)


def in_use(message: str) -> ApiError:
    return ApiError("ResourceInUse", message)


def failure_reason(exc: BaseException) -> str:
    """A FailureReason: smlocal's own errors as the runtime words them, anything else with its type."""
    from smlocal.errors import SmlocalError, failure_text

    text = failure_text(exc) if isinstance(exc, SmlocalError) else f"InternalServerError: {type(exc).__name__}: {exc}"
    return text[:1024]  # the service's limit


def now() -> float:
    return round(time.time(), 3)


def arn(service: str, region: str, kind: str, name: str) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{kind}/{name.lower()}"  # the service lower-cases names


@functools.lru_cache(maxsize=None)
def service_model(name: str):
    """botocore's model of ``name`` ("sagemaker", "logs"): operations and their input shapes."""
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


def _field(path: str, name: str = "") -> str:
    return ".".join(p for p in (path.lstrip("."), name) if p) or "request"


def _message(kind: str, where: str, details: dict) -> tuple[str, str]:
    """(error code, the service-style message) for one botocore validation finding."""
    if kind == "missing required field":
        field = _field(where, details["required_name"])
        return "ValidationException", f"Value null at '{field}' failed to satisfy constraint: Member must not be null"
    if kind == "invalid type":
        wanted = ", ".join(t.replace("<class '", "").replace("'>", "") for t in details["valid_types"])
        return ("SerializationException",
                f"Value {details['param']!r} at '{_field(where)}' is of the wrong type: expected {wanted}")
    if kind == "unknown field":
        return ("ValidationException", f"Unknown field '{_field(where, details['unknown_param'])}'; valid "
                                       f"fields: {', '.join(details['valid_names'])}")
    if kind in ("invalid length", "invalid range"):
        return ("ValidationException", f"Value {details['param']!r} at '{_field(where)}' failed to satisfy "
                                       f"constraint: Member must have {kind.split()[1]} greater than or equal "
                                       f"to {details['min_allowed']}")
    return "ValidationException", f"{kind} at '{_field(where)}': {details}"


def check_request(service: str, operation: str, params: Any) -> None:
    """Raise the service's error for a body that does not fit ``operation``'s input shape."""
    from botocore.validate import ParamValidator

    if not isinstance(params, dict):
        raise ApiError("SerializationException", "The request body must be a JSON object.")
    shape = service_model(service).operation_model(operation).input_shape
    if shape is None:
        return
    report = ParamValidator().validate(params, shape)
    if not report.has_errors():
        return
    findings = [_message(kind, where, details) for kind, where, details in report._errors]
    codes = {code for code, _ in findings}
    code = "SerializationException" if codes == {"SerializationException"} else "ValidationException"
    count = len(findings)
    text = "; ".join(m for _, m in findings)
    raise ApiError(code, f"{count} validation error{'s' if count > 1 else ''} detected: {text}")


def parse_body(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError("SerializationException", f"The request body is not valid JSON: {exc}") from None


def encode(payload: Any) -> bytes:
    return json.dumps(payload, default=str).encode()
