"""Every error answers RFC 9457 `application/problem+json`; no stack trace reaches a client.

Services raise the domain errors below; HTTP errors (werkzeug's, webargs' 422, flask-limiter's
429) and database outages are turned into problems here, in one place.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

PROBLEM_MIMETYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:qunfang:problem:"

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """A business rule said no. Subclasses fix the status; `detail` is shown to the client."""

    status = 400
    slug = "bad-request"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}


class NotFound(DomainError):
    """Missing, or outside the caller's jurisdiction (we never confirm existence)."""

    status = 404
    slug = "not-found"


class Forbidden(DomainError):
    status = 403
    slug = "forbidden"


class Conflict(DomainError):
    status = 409
    slug = "conflict"


class InvalidTransition(Conflict):
    slug = "invalid-transition"


class Unprocessable(DomainError):
    status = 422
    slug = "unprocessable"


def problem(
    status: int,
    *,
    detail: str | None = None,
    title: str | None = None,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Build a problem+json response; `type` is `about:blank` unless a slug names our own kind."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + slug if slug else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    request_id = g.get("request_id")
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    response = Response(
        json.dumps(body, ensure_ascii=False, default=str), status=status, mimetype=PROBLEM_MIMETYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _field_errors(messages: Any, location: str, pointer: str = "") -> list[dict[str, str]]:
    """Flatten marshmallow's nested messages into one entry per field, with a JSON pointer."""
    if isinstance(messages, dict):
        errors = []
        for key, value in messages.items():
            errors.extend(_field_errors(value, location, f"{pointer}/{key}"))
        return errors
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [{"location": location, "pointer": pointer or "/", "detail": m} for m in messages]
    if isinstance(messages, list):
        errors = []
        for value in messages:
            errors.extend(_field_errors(value, location, pointer))
        return errors
    return [{"location": location, "pointer": pointer or "/", "detail": str(messages)}]


# Headers an HTTPException may carry that belong on the problem response too.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "ETag")


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    headers = {k: v for k, v in error.get_headers() if k in _KEPT_HEADERS}
    data = getattr(error, "data", None) or {}
    headers.update(data.get("headers") or {})
    if status == 422 and "messages" in data:
        errors = []
        for location, messages in data["messages"].items():
            errors.extend(_field_errors(messages, location))
        return problem(
            422,
            slug="validation-error",
            detail="The request did not pass validation; see `errors`.",
            headers=headers,
            errors=errors,
        )
    if status == 429:
        detail = "Too many requests; retry after the number of seconds in Retry-After."
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and "Retry-After" not in headers:
            headers["Retry-After"] = str(int(retry_after))
        return problem(429, detail=detail, headers=headers)
    detail = data.get("message") or error.description
    if status >= 500:
        detail = None
    return problem(status, detail=detail, headers=headers)


def handle_domain_error(error: DomainError) -> Response:
    return problem(error.status, slug=error.slug, detail=error.detail, **error.extra)


def _database_unavailable(error: BaseException) -> bool:
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    # The pool could not hand out a connection in time (all busy, or the server unreachable).
    return isinstance(error, sa_exc.TimeoutError)


def handle_unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    if isinstance(error, DomainError):
        return handle_domain_error(error)
    if _database_unavailable(error):
        logger.warning("database unavailable: %s", type(error).__name__)
        return problem(
            503,
            slug="database-unavailable",
            detail="The database is not reachable; try again shortly.",
            headers={"Retry-After": "5"},
        )
    logger.exception("unhandled error")
    return problem(500)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(Exception, handle_unexpected)
