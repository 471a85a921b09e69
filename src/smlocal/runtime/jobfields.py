"""Validators of a training-job request's fields: each returns the value or raises a CustomerError naming
the field's path (``InputDataConfig[0].DataSource...``), as ``parse_job`` and the CLI flags need them."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from smlocal.errors import CustomerError
from smlocal.runtime.s3.uri import is_s3_uri, parse_s3_uri


def field_error(path: str, message: str) -> CustomerError:
    return CustomerError(f"Invalid training job field {path}: {message}")


def object_field(value: Any, path: str, allowed: set[str] | dict) -> dict:
    """A JSON object whose keys are all in ``allowed``."""
    if not isinstance(value, Mapping):
        raise field_error(path, f"must be a JSON object, not {type(value).__name__}.")
    for key in value:
        if key not in allowed:
            raise field_error(f"{path}.{key}" if path else str(key),
                              f"unknown field. Accepted fields here: {', '.join(sorted(allowed))}.")
    return dict(value)


def string_field(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise field_error(path, "must be a non-empty string.")
    return value


def int_field(value: Any, path: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise field_error(path, f"must be an integer >= {minimum}, got {value!r}.")
    try:
        number = int(value)
    except ValueError:
        raise field_error(path, f"must be an integer >= {minimum}, got {value!r}.") from None
    if number < minimum:
        raise field_error(path, f"must be an integer >= {minimum}, got {number}.")
    return number


def choice_field(value: Any, path: str, choices: tuple[str, ...]) -> str:
    for choice in choices:  # the API is case-sensitive; we accept any case and normalise
        if isinstance(value, str) and value.lower() == choice.lower():
            return choice
    raise field_error(path, f"{value!r} is not one of: {', '.join(choices)}.")


def string_map_field(value: Any, path: str, key_pattern: re.Pattern | None = None) -> dict[str, str]:
    """A JSON object of strings (HyperParameters, Environment); JSON numbers and booleans become strings."""
    if not isinstance(value, Mapping):
        raise field_error(path, f"must be a JSON object of strings, not {type(value).__name__}.")
    out: dict[str, str] = {}
    for key, val in value.items():
        if key_pattern is not None and not key_pattern.match(str(key)):
            raise field_error(f"{path}.{key}",
                              "is not a valid name (letters, digits and '_', not starting with a digit).")
        if isinstance(val, bool):  # JSON true/false written by hand: SageMaker wants strings
            val = "true" if val else "false"
        elif isinstance(val, (int, float)):
            val = str(val)
        elif not isinstance(val, str):
            raise field_error(f"{path}.{key}", f"must be a string, got {type(val).__name__} ({val!r}).")
        out[str(key)] = val
    return out


def local_path(uri: str, path: str, base: Path | None = None) -> str:
    """A channel/output URI as an absolute local path: a plain path or ``file://`` URI."""
    if is_s3_uri(uri):
        raise field_error(path, f"{uri!r} is an S3 URI; a local path or file:// URI is needed here.")
    if "://" in uri and not uri.startswith("file://"):
        raise field_error(path, f"{uri!r}: only local paths and file:// URIs are supported.")
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    p = Path(uri).expanduser()
    if not p.is_absolute():
        p = (base or Path.cwd()) / p
    return str(p.resolve())


def s3_location(uri: str, path: str) -> str:
    """An ``s3://bucket/key`` URI checked for a bucket name, with the scheme in lower case."""
    try:
        bucket, key = parse_s3_uri(uri)
    except CustomerError as exc:
        raise field_error(path, str(exc)) from None
    return f"s3://{bucket}/{key}"


def output_location(uri: str, path: str, base: Path | None = None) -> str:
    """An output (S3OutputPath, --output): an ``s3://`` URI as it is, else an absolute local path."""
    return s3_location(uri, path) if is_s3_uri(uri) else local_path(uri, path, base)
