"""flask-jwt-extended wiring: every verified token has our claims, loads its user and checks its
session.

A token we sign has its user (`sub`), its session (`sid`) and its own id (`jti`) as UUID
strings, `type` access or refresh, `fresh` false, and perhaps the user's `roles`. One signed
with our key but shaped otherwise (a token of another deployment or an older format, a leaked
key: `"sid": 5`) is a 401 like any invalid token, before any code reads its claims.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, request
from flask_jwt_extended import JWTManager
from sqlalchemy.engine import make_url

from app.auth import identity_cache
from app.auth.models import User
from app.auth.service import live_user
from app.extensions import db

# Where a request keeps the users its tokens loaded: flask-jwt-extended calls the user loader on
# every verification, and one request verifies more than once (the rate limiter's key, then the
# view). Not `flask.g`: an application context may outlive a request (tests push one around
# several).
_LOADED = "qunfang.auth.loaded_users"


def _uuid_text(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def claims_are_ours(payload: dict[str, Any]) -> bool:
    """Whether a decoded token's claims have the types our tokens give them."""
    roles = payload.get("roles", [])
    return (
        _uuid_text(payload.get("sub"))
        and _uuid_text(payload.get("sid"))
        and _uuid_text(payload.get("jti"))
        and payload.get("type") in ("access", "refresh")
        and isinstance(payload.get("fresh"), bool | int | float)
        and isinstance(roles, list)
        and all(isinstance(role, str) for role in roles)
    )


def init_token_loading(jwt: JWTManager) -> None:
    # Every token is made with str(user.id), and flask-jwt-extended would write a UUID identity
    # as its text anyway: without this loader no token changes.
    @jwt.user_identity_loader  # pragma: no mutate
    def _identity(identity):
        return str(identity)

    @jwt.token_verification_loader
    def _verify_claims(_header: dict, payload: dict) -> bool:
        # False answers 401 ("the token's claims were refused").
        return claims_are_ours(payload)

    @jwt.user_lookup_loader
    def _load_user(_header: dict, payload: dict):
        # None (unknown user, disabled account, revoked session) answers 401.
        loaded = request.environ.setdefault(_LOADED, {})
        key = (payload["type"], payload["sub"], payload["sid"])
        if key not in loaded:
            loaded[key] = _live_user(payload)
        return loaded[key]


# An annotation is never evaluated here (`from __future__ import annotations`): its `|` has no
# behaviour to test.
def _live_user(payload: dict[str, Any]) -> User | None:  # pragma: no mutate
    """The token's live user: from this process's identity cache for access tokens when
    AUTH_CACHE_SECONDS > 0, else from the database. A refresh token (rare, and it is spent) is
    always checked against the database."""
    seconds = current_app.config["AUTH_CACHE_SECONDS"]
    if payload["type"] != "access" or seconds <= 0:
        return live_user(db.session, payload["sub"], payload["sid"])
    # LISTEN needs a session of its own: behind a transaction-mode pooler, the direct URL.
    direct = current_app.config["DATABASE_DIRECT_URL"]
    cache = identity_cache.for_database(make_url(direct) if direct else db.engine.url)
    return identity_cache.cached_live_user(
        cache, db.session, payload["sub"], payload["sid"], seconds
    )
