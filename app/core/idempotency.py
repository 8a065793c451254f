"""`Idempotency-Key` for mobile writes (ARCHITECTURE.md §5).

A replay of a finished request returns the first response; the same key with a different request
answers 422; a duplicate arriving while the first is still running answers 409. The record is
written in the same transaction as the work (the view's response is stored just before the
request-boundary commit), so a crash can never leave work without its record or the reverse.
Records live `IDEMPOTENCY_TTL_DAYS` (at least 30: phones stay offline for days); a periodic job
prunes the expired ones.

Keys are scoped by caller (`user:<id>`, or `anonymous`); nothing else about the caller is stored.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import uuid
from collections.abc import Callable
from typing import Any

import flask_smorest
from flask import Response, current_app, request
from sqlalchemy import DateTime, Integer, LargeBinary, String, delete, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.core.auth import current_identity
from app.core.errors import Conflict, Unprocessable
from app.core.i18n import _
from app.core.jobs import jobs, task
from app.extensions import db

HEADER = "Idempotency-Key"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{8,255}$")
# Response headers worth replaying; others (dates, request ids) belong to the replay itself.
_REPLAYED_HEADERS = ("Content-Type", "Location", "ETag")


class IdempotencyRecord(db.Model):
    __tablename__ = "idempotency_records"

    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # PostgreSQL's bytea has no length: the 32 is documentation only.
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))  # pragma: no mutate
    status_code: Mapped[int] = mapped_column(Integer)
    headers: Mapped[dict[str, str]] = mapped_column(JSONB)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


def _fingerprint() -> bytes:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0" + request.full_path.encode() + b"\0")
    digest.update((request.content_type or "").encode() + b"\0")
    digest.update(request.get_data(cache=True))
    return digest.digest()


def _replay(record: IdempotencyRecord, replayed: Callable[[bytes], bytes]) -> Response:
    response = Response(replayed(record.body), status=record.status_code)
    for name, value in record.headers.items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _default_scope() -> str:
    identity = current_identity()
    return f"user:{identity}" if identity else "anonymous"


def _unchanged(body: bytes) -> bytes:
    return body


def idempotent(
    view: Callable[..., Any] | None = None,  # pragma: no mutate (a type hint, never evaluated)
    *,
    scope: Callable[[], str] = _default_scope,
    stored: Callable[[bytes], bytes] = _unchanged,
    replayed: Callable[[bytes], bytes] = _unchanged,
) -> Callable[..., Any]:
    """Make a write view honour the optional `Idempotency-Key` header.

    Use it under the access decorator and above `@blp.arguments` / `@blp.response`, so that it
    sees the serialised response: `@blp.role_required(...)` then `@idempotent` then the rest.

    Options (as `@idempotent(scope=..., ...)`): `scope` names whose keys these are (the caller's
    account by default; "anonymous" for requests that must not be linked to an account);
    `stored` rewrites the response body before it is kept, `replayed` restores it on a replay,
    for answers holding something the database must not (a one-time secret).
    """
    if view is None:
        return functools.partial(idempotent, scope=scope, stored=stored, replayed=replayed)

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not _VALID_KEY.match(key):
            raise Unprocessable(
                _("%(header)s must be 8 to 255 printable ASCII characters.", header=HEADER)
            )
        key_scope = scope()
        if key_scope == "anonymous" and not _is_uuid(key):
            # Anonymous callers share one scope: only an unguessable key keeps one caller from
            # replaying (and reading) another's answer.
            raise Unprocessable(
                _("Anonymous requests need a random UUID as %(header)s.", header=HEADER)
            )
        fingerprint = _fingerprint()

        session = db.session
        locked = session.execute(
            select(func.pg_try_advisory_xact_lock(func.hashtextextended(f"{key_scope} {key}", 0)))
        ).scalar_one()
        if not locked:
            raise Conflict(
                _(
                    "A request with this %(header)s is still being processed; retry later.",
                    header=HEADER,
                )
            )
        record = session.get(IdempotencyRecord, (key_scope, key))
        if record is not None and record.expires_at > _now():
            if record.fingerprint != fingerprint:
                raise Unprocessable(
                    _("This %(header)s was used for a different request.", header=HEADER)
                )
            return _replay(record, replayed)
        if record is not None:  # expired but not pruned yet: the key is free again
            session.delete(record)
            session.flush()

        response = current_app.make_response(view(*args, **kwargs))
        # Equivalent mutants here (<=, or): an answer >= 400 rolls the request's transaction
        # back (app/core/blueprint.py), the record with it; no idempotent view streams.
        if response.status_code < 400 and not response.is_streamed:  # pragma: no mutate
            session.add(
                IdempotencyRecord(
                    scope=key_scope,
                    key=key,
                    fingerprint=fingerprint,
                    status_code=response.status_code,
                    headers={
                        h: response.headers[h] for h in _REPLAYED_HEADERS if h in response.headers
                    },
                    body=stored(response.get_data()),
                    expires_at=_now()
                    + dt.timedelta(days=current_app.config["IDEMPOTENCY_TTL_DAYS"]),
                )
            )
            session.flush()
        return response

    header = {
        "in": "header",
        "name": HEADER,
        "required": False,
        "schema": {"type": "string", "pattern": _VALID_KEY.pattern},
        "description": "Client-chosen key: a random UUID (required without a token). "
        "A replay returns the first response; the same key with another request is a 422.",
    }
    # flask-smorest's public `doc` (a static method); its `parameters` replace any given before.
    return flask_smorest.Blueprint.doc(parameters=[header])(wrapper)


def _is_uuid(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4
    except ValueError:
        return False


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def prune_expired(session: Session, now: dt.datetime) -> int:
    """Delete idempotency records that expired before `now`; returns how many."""
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < now))
    return result.rowcount


@jobs.periodic(cron="17 * * * *", periodic_id="prune_idempotency_records")
@task(queue="maintenance")
def prune_idempotency_records(timestamp: int) -> int:
    """Hourly: drop expired idempotency records."""
    return prune_expired(db.session, dt.datetime.fromtimestamp(timestamp, dt.UTC))
