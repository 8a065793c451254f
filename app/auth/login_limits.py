"""How many sign-in attempts an account takes, and from whom: strangers cannot lock an owner out
of their own device, and nobody gets more than a few guesses at a password.

The policy (README "Signing in"; OWASP's "device cookies"):

- Every successful login answers a **device token**: signed by the server (SECRET_KEY), bound to
  the account's phone number, valid LOGIN_DEVICE_DAYS. The app keeps it and sends it back as
  `device_token` with its next logins.
- A login **with a valid device token for the account it names** counts only against that
  device's own bucket (LOGIN_DEVICE_RATE_LIMIT). No stranger holds it, so no number of
  strangers' failures stops the owner signing in on their own phone; a stolen token still gets
  only that device's few guesses.
- Every other login attempt (no token, another account's, a forged or expired one) counts
  against the account's bucket (LOGIN_RATE_LIMIT) and the client's (LOGIN_CLIENT_RATE_LIMIT).
  When the account's is spent, such attempts answer 429 with Retry-After before any password
  is checked: the guesses are bounded whatever the number of clients; the windows (a minute,
  an hour, a day) make the wait grow with the attempts instead of a lock that needs an admin.

Every attempt is counted before the password is checked (flask-limiter's `hit`, atomic in any
storage), successes included: with "count failures afterwards", concurrent requests could all
pass the check before any failure was counted. Counters live in the limiter's storage
(RATELIMIT_STORAGE_URI), so they hold across processes when that storage is shared.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import Any

from flask import current_app, request
from flask_limiter.util import get_remote_address
from itsdangerous import BadData, URLSafeTimedSerializer
from limits import parse_many
from werkzeug.exceptions import TooManyRequests

from app.auth import validators
from app.extensions import limiter

logger = logging.getLogger(__name__)
_SALT = "qunfang-login-device"
# The account's bucket is shared under this scope (not the login endpoint's own), so that other
# password checks (deleting the account) draw on the same guesses.
_ACCOUNT_SCOPE = "login-account"


def _cached(name: str, compute: Callable[[], Any]) -> Any:
    """A value computed once per request (the limits ask several times)."""
    key = f"qunfang.login.{name}"
    if key not in request.environ:
        request.environ[key] = compute()
    return request.environ[key]


def _read_body() -> dict[str, Any]:
    # Nothing here may raise: flask-limiter takes an error while it evaluates limits for an
    # outage of its store (and, with its in-memory fallback on, stops sharing counts).
    try:
        body = request.get_json(silent=True)
    except Exception:  # too large, too deep, refused text: the view answers it
        body = None
    return body if isinstance(body, dict) else {}


def _body() -> dict[str, Any]:
    """The login's JSON body, read before the view parses it (the limits come first); anything
    unreadable is an empty body, and the view answers it properly."""
    return _cached("body", _read_body)


def _phone() -> str | None:
    raw = _body().get("phone")
    try:
        return validators.normalize_phone(str(raw)) if raw is not None else None
    except validators.InvalidInput:
        return None


def _account_tag(phone: str) -> str:
    """Which account a device token belongs to: a keyed hash of its phone number, so the token
    carries no phone number in clear."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"login-device:{phone}".encode(), hashlib.sha256).hexdigest()[:32]


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def issue_device_token(phone: str) -> str:
    """A new device token for the account of `phone` (normalized or not)."""
    tag = _account_tag(validators.normalize_phone(phone))
    return _serializer().dumps({"account": tag, "device": secrets.token_urlsafe(12)})


def _read_device() -> str | None:
    token, phone = _body().get("device_token"), _phone()
    if not isinstance(token, str) or len(token) > 512 or not token.isascii() or phone is None:
        return None  # tokens are URL-safe base64: anything else is not one
    max_age = current_app.config["LOGIN_DEVICE_DAYS"] * 86400
    try:
        claims = _serializer().loads(token, max_age=max_age)
    except BadData:  # forged, altered, expired or unreadable
        return None
    if (
        isinstance(claims, dict)
        and hmac.compare_digest(str(claims.get("account")), _account_tag(phone))
        and isinstance(claims.get("device"), str)
    ):
        return claims["device"]
    return None


def trusted_device() -> str | None:
    """The device id of a valid, unexpired device token for the account this login names;
    None for anything else."""
    return _cached("device", _read_device)


def counted_per_account() -> bool:
    """Whether this attempt counts against the account it names: not with that account's
    device token, and not when it names no account (a body without a phone number, or one
    that cannot be read: no password can be guessed with it, and the per-client limit still
    counts it)."""
    return _phone() is not None and trusted_device() is None


def _account_key() -> str:
    """The bucket of the account a login names: its normalized phone, so that other spellings
    (+86, spaces) share it."""
    return f"login:{_phone()}"


def _client_key() -> str:
    return f"client:{get_remote_address()}"


def _device_key() -> str:
    return f"login-device:{trusted_device()}"


def _untrusted() -> bool:
    return trusted_device() is None


def login_limits() -> tuple:
    """The decorators of the login view."""
    return (
        limiter.shared_limit(
            lambda: current_app.config["LOGIN_RATE_LIMIT"],
            scope=_ACCOUNT_SCOPE,
            key_func=_account_key,
            exempt_when=lambda: not counted_per_account(),
        ),
        limiter.limit(
            lambda: current_app.config["LOGIN_CLIENT_RATE_LIMIT"],
            key_func=_client_key,
            exempt_when=lambda: not _untrusted(),
        ),
        limiter.limit(
            lambda: current_app.config["LOGIN_DEVICE_RATE_LIMIT"],
            key_func=_device_key,
            exempt_when=_untrusted,
        ),
    )


def count_password_attempt(phone: str) -> None:
    """A password re-entered to confirm an act (deleting the account) is a guess at it like a
    sign-in without a device token: it is counted against the account's sign-in bucket before
    the password is checked, and refused (429 with Retry-After) once that bucket is spent."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX", "")
    args = [a for a in (prefix, f"login:{phone}", _ACCOUNT_SCOPE) if a]
    strategy = limiter.limiter
    try:
        spent = [
            item
            for item in parse_many(current_app.config["LOGIN_RATE_LIMIT"])
            if not strategy.hit(item, *args)
        ]
    except Exception:  # the limits' store is out: as sign-in's own limits, do not fail the act
        logger.warning("password attempt not counted: the rate-limit store failed", exc_info=True)
        return
    if spent:
        reset = max(strategy.get_window_stats(item, *args).reset_time for item in spent)
        raise TooManyRequests(retry_after=max(1, math.ceil(reset - time.time())))
