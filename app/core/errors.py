"""Every error answers RFC 9457 `application/problem+json`; no stack trace reaches a client.

Services raise the domain errors below; HTTP errors (werkzeug's, webargs' 422, flask-limiter's
429) and database outages are turned into problems here, in one place.

`type` (the slug) is the contract a client branches on; `title` and `detail` are for people and
follow Accept-Language (app/core/i18n.py). Every slug has its title in `PROBLEM_TITLES`: a
problem of an unlisted slug is a bug that tests/test_i18n.py catches.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import exc as orm_exc
from werkzeug.exceptions import HTTPException

from app.core.i18n import N_, _, message_text, translated

PROBLEM_MIMETYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:qunfang:problem:"

logger = logging.getLogger(__name__)

# Each problem type's title (English message ids, translated when a problem is made).
PROBLEM_TITLES: dict[str, str] = {
    "bad-request": N_("Bad request"),
    "not-found": N_("Not found"),
    "unauthorized": N_("Sign-in required"),
    "forbidden": N_("Not allowed"),
    "conflict": N_("Conflict with the current state"),
    "invalid-transition": N_("Not possible in the current state"),
    "unprocessable": N_("Request refused"),
    "validation-error": N_("Validation failed"),
    "authentication-failed": N_("Authentication failed"),
    "under-age": N_("Under the minimum age"),
    "concurrent-update": N_("Concurrent update"),
    "database-unavailable": N_("Database unavailable"),
    "invalid-value": N_("Invalid value"),
    "timed-out": N_("Timed out"),
    "migrations-pending": N_("Migrations pending"),
}

# Titles of `about:blank` problems: the status's reason phrase, in the reader's language.
STATUS_TITLES: dict[int, str] = {
    400: N_("Bad Request"),
    401: N_("Unauthorized"),
    403: N_("Forbidden"),
    404: N_("Not Found"),
    405: N_("Method Not Allowed"),
    406: N_("Not Acceptable"),
    409: N_("Conflict"),
    410: N_("Gone"),
    412: N_("Precondition Failed"),
    413: N_("Content Too Large"),
    415: N_("Unsupported Media Type"),
    422: N_("Unprocessable Content"),
    428: N_("Precondition Required"),
    429: N_("Too Many Requests"),
    500: N_("Internal Server Error"),
    503: N_("Service Unavailable"),
}

# werkzeug's default descriptions of the statuses a client meets without a message of ours.
STATUS_DETAILS: dict[int, str] = {
    404: N_("The requested URL was not found on the server."),
    405: N_("The method is not allowed for the requested URL."),
    406: N_("The resource cannot answer in a format the request accepts."),
    413: N_("The request body is too large."),
    415: N_("The request body is in a format this resource does not take."),
}


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


class Unauthorized(DomainError):
    """A public operation that needs a signed-in caller for some of its answers."""

    status = 401
    slug = "unauthorized"


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


class InvalidValues(Unprocessable):
    """Values refused outside a schema (app/core/untrusted.py), listed as schema errors are:
    (location, JSON pointer, detail) each."""

    slug = "validation-error"

    def __init__(self, errors: list[tuple[str, str, str]]):
        listed = [{"location": loc, "pointer": ptr, "detail": text} for loc, ptr, text in errors]
        # Field first, as Open311 clients read it ("description: ...").
        summary = "; ".join(f"{ptr[1:]} ({loc}): {text}" for loc, ptr, text in errors)
        super().__init__(summary, extra={"errors": listed})


def field_error(pointer: str, detail: Any) -> Unprocessable:
    """A 422 about one field of the JSON body, in the shape schema errors have."""
    return Unprocessable(
        detail, extra={"errors": [{"location": "json", "pointer": pointer, "detail": detail}]}
    )


def problem(
    status: int,
    *,
    detail: str | None = None,
    title: str | None = None,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Build a problem+json response; `type` is `about:blank` unless a slug names our own kind.
    The title is the slug's (or the status's) in the request's language."""
    if title is None:
        title = _problem_title(status, slug)
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + slug if slug else "about:blank",
        "title": str(title),
        "status": status,
    }
    if detail:
        body["detail"] = str(detail)
    request_id = g.get("request_id")
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    # A lone surrogate echoed from a request has no UTF-8: it must not fail the error itself.
    text = json.dumps(body, ensure_ascii=False, default=str)
    response = Response(text.encode("utf-8", "replace"), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _problem_title(status: int, slug: str | None) -> str:
    if slug:
        return translated(PROBLEM_TITLES[slug])
    if status in STATUS_TITLES:
        return translated(STATUS_TITLES[status])
    return HTTPStatus(status).phrase


def _field_errors(messages: Any, location: str, pointer: str = "") -> list[dict[str, str]]:
    """Flatten marshmallow's nested messages into one entry per field, with a JSON pointer."""
    if isinstance(messages, dict):
        errors = []
        for key, value in messages.items():
            errors.extend(_field_errors(value, location, f"{pointer}/{key}"))
        return errors
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [
            {"location": location, "pointer": pointer or "/", "detail": message_text(m)}
            for m in messages
        ]
    if isinstance(messages, list):
        errors = []
        for value in messages:
            errors.extend(_field_errors(value, location, pointer))
        return errors
    return [{"location": location, "pointer": pointer or "/", "detail": message_text(messages)}]


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
            detail=_("The request did not pass validation; see `errors`."),
            headers=headers,
            errors=errors,
        )
    if status == 429:
        detail = _("Too many requests; retry after the number of seconds in Retry-After.")
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and "Retry-After" not in headers:
            headers["Retry-After"] = str(int(retry_after))
        return problem(429, detail=detail, headers=headers)
    detail = data.get("message") or _http_detail(error)
    if status >= 500:
        detail = None
    return problem(status, detail=detail, headers=headers)


def _http_detail(error: HTTPException) -> str | None:
    """The exception's description, translated when it is werkzeug's default for its status
    (descriptions given where it is raised are ours, and marked there)."""
    default = type(error).description
    if error.description == default and error.code in STATUS_DETAILS:
        return translated(STATUS_DETAILS[error.code])
    return str(error.description) if error.description else None


def handle_domain_error(error: DomainError) -> Response:
    return problem(error.status, slug=error.slug, detail=error.detail, **error.extra)


# SQLSTATEs meaning the server is away or refusing work (connection exceptions, shutdowns,
# too many connections), and those meaning "a concurrent transaction got in the way: retry".
_UNAVAILABLE_PREFIXES = ("08", "57P01", "57P02", "57P03", "53300")
_RETRY_STATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available
_TIMED_OUT_STATES = {"57014"}  # statement timeout / cancelled


def _sqlstate(error: sa_exc.DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


def _database_problem(error: Exception) -> Response | None:
    """A problem for database failures that are not bugs, or None."""
    if isinstance(error, orm_exc.StaleDataError):  # a versioned row changed under us
        return problem(
            409,
            slug="concurrent-update",
            detail=_("Someone else changed this at the same time; read it again and retry."),
        )
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection in time
        state = "pool-timeout"
    elif isinstance(error, sa_exc.DBAPIError):
        state = _sqlstate(error) or ("disconnect" if error.connection_invalidated else None)
        if state is None and isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            state = "no-sqlstate"  # the driver could not even reach the server
    else:
        return None
    if state in ("pool-timeout", "disconnect", "no-sqlstate") or (
        state and state.startswith(_UNAVAILABLE_PREFIXES)
    ):
        logger.warning("database unavailable", extra={"sqlstate": state})
        # A dropped connection renewed the pool: the next attempt can succeed at once.
        dropped = isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated
        return problem(
            503,
            slug="database-unavailable",
            detail=_("The database is not reachable; try again shortly."),
            headers={"Retry-After": "1" if dropped else "5"},
        )
    if isinstance(error, sa_exc.DataError):
        # A value our schemas let through but PostgreSQL cannot take (a NUL character, a number
        # out of range): the request's fault, not a bug to answer with 500.
        logger.warning("value refused by the database", extra={"sqlstate": state})
        return problem(
            422,
            slug="invalid-value",
            detail=_("A value in the request cannot be stored (too long or out of range)."),
        )
    if state in _RETRY_STATES:
        logger.warning("concurrent transaction conflict", extra={"sqlstate": state})
        return problem(
            409,
            slug="concurrent-update",
            detail=_("Another change got in the way; retry the request."),
            headers={"Retry-After": "1"},
        )
    if state in _TIMED_OUT_STATES:
        logger.warning("statement timed out", extra={"sqlstate": state})
        return problem(
            503,
            slug="timed-out",
            detail=_("The request took too long."),
            headers={"Retry-After": "5"},
        )
    return None


def _log_unexpected(error: Exception) -> None:
    """Database errors carry row values in their messages (PostgreSQL's DETAIL line): log only
    what identifies the failure. Other errors are logged with their traceback."""
    if isinstance(error, sa_exc.DBAPIError):
        diag = getattr(error.orig, "diag", None)
        logger.error(
            "unhandled database error",
            extra={
                "error": type(error.orig).__name__,
                "sqlstate": _sqlstate(error),
                "constraint": getattr(diag, "constraint_name", None),
                "table": getattr(diag, "table_name", None),
            },
        )
    else:
        logger.exception("unhandled error")


def handle_unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    if isinstance(error, DomainError):
        return handle_domain_error(error)
    if isinstance(error, UnicodeEncodeError) and error.reason == "surrogates not allowed":
        # Text with a lone surrogate that reached the driver by a way app/core/untrusted.py
        # does not guard (its checks make this a fallback): the value's fault, not a bug.
        logger.warning("text with a lone surrogate refused")
        return problem(
            422, slug="invalid-value", detail=_("A text in the request holds a lone surrogate.")
        )
    database_problem = _database_problem(error)
    if database_problem is not None:
        return database_problem
    _log_unexpected(error)
    return problem(500)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(Exception, handle_unexpected)
