"""The application's extension objects, created unbound and initialised by `create_app`.

The flask-smorest `Api` is not here: it keeps the spec of one application, so `create_app` makes
one per application.
"""

import datetime as dt
import functools
import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Any

import flask_limiter
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

from app.core.db import RequestSession

# Deterministic constraint names, so that migrations can name what they alter or drop.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(
    metadata=MetaData(naming_convention=NAMING_CONVENTION),
    session_options={"class_": RequestSession},
)
migrate = Migrate()
jwt = JWTManager()


def _rate_limit_key() -> str:
    """Rate-limit buckets: the caller's user id when a token came, else the client address.

    Addresses live only in the limiter's counters (the shared store of RATELIMIT_STORAGE_URI)
    and expire with them; they are never logged or written to the database. Routes anonymous
    senders use take `anonymous_bucket` instead.
    """
    from flask_limiter.util import get_remote_address

    from app.core.auth import current_identity

    identity = current_identity()
    return f"user:{identity}" if identity else f"client:{get_remote_address()}"


def _bucket_key(secret: str, day: dt.date) -> bytes:
    """The key of one UTC day's anonymous buckets, derived from SECRET_KEY."""
    return hmac.new(
        secret.encode(),
        f"qunfang anonymous rate-limit buckets {day.isoformat()}".encode(),
        hashlib.sha256,
    ).digest()


def anonymous_bucket() -> str:
    """A rate-limit bucket for an anonymous sender: a keyed hash of the client address.

    Every process (and host) of one deployment derives the same key, so a shared store counts a
    sender once; the key changes every UTC day, so a bucket cannot be followed from one day to
    the next, and the store never holds an address. (Limits counted per day restart at
    midnight UTC with it.)
    """
    from flask import current_app
    from flask_limiter.util import get_remote_address

    day = dt.datetime.now(dt.UTC).date()
    key = _bucket_key(current_app.config["SECRET_KEY"], day)
    digest = hmac.new(key, get_remote_address().encode(), hashlib.sha256).hexdigest()
    return f"anon:{digest[:32]}"


def _never_raises(key_func: Callable[[], str]) -> Callable[[], str]:
    """A rate-limit key that cannot fail. flask-limiter takes any exception raised while it
    evaluates limits for an outage of its store: with the in-memory fallback on, the process
    then counts in its own memory for a while (limits no longer shared across processes), so a
    key that raised on a malformed body (too large, refused text) would let any sender switch
    shared limits off. A body the key cannot read counts in one bucket of its own; the view then
    refuses it as it refuses any such body."""

    @functools.wraps(key_func)
    def key() -> str:
        try:
            return key_func()
        except Exception as exc:
            # A statement that failed (the caller's lookup on a connection the server dropped)
            # leaves the session's transaction unusable: the view starts afresh.
            db.session.rollback()
            logging.getLogger(__name__).warning(
                "rate-limit key %s could not read the request: %s",
                key_func.__name__,
                type(exc).__name__,
            )
            return f"unreadable:{key_func.__name__}"

    return key


class Limiter(flask_limiter.Limiter):
    """flask-limiter's Limiter whose key functions never raise (see `_never_raises`)."""

    def __init__(self, *, key_func: Callable[[], str], **options: Any) -> None:
        super().__init__(key_func=_never_raises(key_func), **options)

    def limit(self, *args: Any, key_func: Callable[[], str] | None = None, **options: Any):
        wrapped = _never_raises(key_func) if key_func is not None else None
        return super().limit(*args, key_func=wrapped, **options)

    def shared_limit(self, *args: Any, key_func: Callable[[], str] | None = None, **options: Any):
        wrapped = _never_raises(key_func) if key_func is not None else None
        return super().shared_limit(*args, key_func=wrapped, **options)


limiter = Limiter(key_func=_rate_limit_key)
