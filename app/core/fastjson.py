"""JSON answers of the hot lists, written by orjson rather than field by field by marshmallow.

The OpenAPI response schemas stay the contract: a view that answers through here documents its
schema with `@blp.response` as any other, hands over values of the types that schema dumps (or
that orjson writes the same way: str, int, float, bool, None, lists, dicts, timezone-aware
datetimes as ISO 8601), and has a test that its answer equals what the schema dumps for the same
rows (tests/stations/test_fast_answers.py, tests/tips/test_fast_answers.py).

Values already JSON in the database (a JSONB column read as text) go in as they are with
`raw(text)`: not parsed in Python only to be written again.

The answer is UTF-8 with non-ASCII characters as they are (a Chinese station name is 3 bytes a
character, not a 6-byte `\\uXXXX` escape each). Caching headers are not set here: the view's
data class (app/core/caching.py) applies to these responses as to any other, after the view.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from flask import Response, current_app, request

JSON = "application/json"  # GeoJSON's media type and answers: app/core/geojson.py


def raw(text: str | bytes) -> orjson.Fragment:
    """A value that is JSON text already (made or stored by PostgreSQL), written as it is."""
    return orjson.Fragment(text)


def dumps(document: Any, *, lenient: bool = False) -> bytes:
    """`document` as compact UTF-8 JSON; datetimes in RFC 3339 (`2026-12-03T08:00:00+08:00`,
    as marshmallow writes them: never the space `str()` puts between date and time, which
    strict RFC 3339 parsers refuse). `lenient` writes other values orjson does not know as
    `str()` does (the aggregates' numerics)."""
    if lenient:
        return orjson.dumps(document, default=str)
    return orjson.dumps(document)


def answer(
    document: Any,
    *,
    mimetype: str = JSON,
    status: int = 200,
    content_etag: bool = False,
    headers: dict[str, str] | None = None,
) -> Response:
    """The response for `document` (or for JSON bytes already made).

    `content_etag`: the ETag is a digest of the body, and the answer is conditional (a client
    that sends it back as If-None-Match gets 304 Not Modified without the body)."""
    body = document if isinstance(document, bytes) else dumps(document)
    response = current_app.response_class(body, status=status, mimetype=mimetype)
    if headers:
        response.headers.update(headers)
    if content_etag:
        response.set_etag(hashlib.sha256(body).hexdigest()[:32])
        return response.make_conditional(request)
    return response
