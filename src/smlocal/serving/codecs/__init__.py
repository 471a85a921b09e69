"""One codec module per content type; this registry picks them from Content-Type and Accept headers."""
from __future__ import annotations

import functools
from types import ModuleType

from smlocal.environment import parse_content_type
from smlocal.errors import UnsupportedMediaType
from smlocal.serving.codecs import csv_codec, json_codec, jsonlines_codec, protobuf_codec

CODECS: dict[str, ModuleType] = {m.MEDIA_TYPE: m for m in (json_codec, jsonlines_codec, csv_codec, protobuf_codec)}
SUPPORTED = tuple(CODECS)


def request_codec(content_type: str | None, default: str = json_codec.MEDIA_TYPE) -> tuple[ModuleType, dict]:
    """The decoder for a Content-Type header (missing -> JSON, as the built-ins' scaffolding does)."""
    codec, params = _request_codec(content_type, default)
    return codec, dict(params)


# Clients send the same few header values again and again: parse each once (bounded, errors not kept).
@functools.lru_cache(maxsize=256)
def _request_codec(content_type: str | None, default: str) -> tuple[ModuleType, tuple[tuple[str, str], ...]]:
    media, params = parse_content_type(content_type, default=default)
    codec = CODECS.get(media)
    if codec is None:
        raise UnsupportedMediaType(
            f"Content type '{media}' is not supported; send one of: {', '.join(SUPPORTED)}."
        )
    return codec, tuple(params.items())


def _accept_candidates(accept: str) -> list[str]:
    """Media types of an Accept header, highest q first (stable), q=0 dropped."""
    ranked = []
    for position, item in enumerate(accept.split(",")):
        if not item.strip():
            continue
        media, params = parse_content_type(item)
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            ranked.append((-q, position, media))
    return [media for _, _, media in sorted(ranked)]


@functools.lru_cache(maxsize=256)
def response_codec(accept: str | None, default: str = json_codec.MEDIA_TYPE) -> ModuleType:
    """The encoder for an Accept header; missing or ``*/*`` -> ``default`` (JSON)."""
    if not accept or not accept.strip():
        return CODECS[default]
    candidates = _accept_candidates(accept)
    for media in candidates:
        if media in ("*/*", "application/*") or media == "*":
            return CODECS[default]
        if media in CODECS:
            return CODECS[media]
        if media == "text/*":
            return csv_codec
    raise UnsupportedMediaType(
        f"Accept '{accept.strip()}' is not supported; accept one of: {', '.join(SUPPORTED)}."
    )
