"""Structured JSON logs with a request id, and nothing personal in them.

One access line per request names the route *template* (`/api/v1/tips/<uuid:tip_id>`), never the
concrete path or query string (they can hold codes, coordinates or phone numbers), and never the
client address: anonymous submitters must not be traceable from our logs.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid

from flask import Flask, Response, g, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_logger = logging.getLogger("qunfang.access")


class RequestIdFilter(logging.Filter):
    """Adds the current request id (or None outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.request_id = g.get("request_id")
        except RuntimeError:  # outside an application context
            record.request_id = None
        return True


def configure_logging(level: str) -> None:
    """JSON lines on stderr for the whole process (idempotent: one handler, replaced on re-run)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{name}{message}{request_id}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
    )
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactAddresses())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_qunfang", False):
            root.removeHandler(existing)
    handler._qunfang = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # procrastinate logs job arguments at INFO (jobs take ids, but still); flask-limiter names
    # the bucket of each breach (a phone number, a client address): keep both to warnings.
    logging.getLogger("procrastinate").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("flask-limiter").setLevel(max(logging.WARNING, root.level))


def _start_request() -> None:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    if "request_id" not in g:  # a failure before our before_request hook ran
        _start_request()
    response.headers[REQUEST_ID_HEADER] = g.request_id
    access_logger.info(
        "request",
        extra={
            "method": request.method,
            "route": request.url_rule.rule if request.url_rule else None,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.request_started) * 1000, 1),
        },
    )
    return response


def init_request_logging(app: Flask) -> None:
    app.before_request(_start_request)
    app.after_request(_finish_request)


_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
# Full eight-group addresses, or compressed ones (with "::"); "12:30:45" is a time, not an address.
_IPV6 = re.compile(
    r"(?<![\w:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
    r"|(?:[0-9A-Fa-f]{1,4}:)*[0-9A-Fa-f]{0,4}::(?:[0-9A-Fa-f]{1,4}:)*[0-9A-Fa-f]{0,4})(?![\w:])"
)


class RedactAddresses(logging.Filter):
    """Replaces IP addresses in a record's message: gunicorn names the client in some warnings
    ("Invalid request from ip=..."), and client addresses must never reach our logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _IPV6.sub("[address]", _IPV4.sub("[address]", message))
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def gunicorn_log_config(level: str = "INFO") -> dict:
    """gunicorn's own logging (gunicorn.conf.py): JSON lines, addresses redacted."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactAddresses}},
        "formatters": {
            "json": {
                "()": JsonFormatter,
                "fmt": "{levelname}{name}{message}",
                "style": "{",
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": "time",
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["redact"],
            }
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
        # gunicorn merges this into its defaults, whose root logger names a handler we replace;
        # the app gives the root logger its own handler (configure_logging).
        "root": {"level": level.upper(), "handlers": []},
    }
