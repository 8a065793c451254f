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

from flask_jwt_extended import JWTManager

from app.auth.service import live_user
from app.extensions import db


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
    @jwt.user_identity_loader
    def _identity(identity):
        return str(identity)

    @jwt.token_verification_loader
    def _verify_claims(_header: dict, payload: dict) -> bool:
        # False answers 401 ("the token's claims were refused").
        return claims_are_ours(payload)

    @jwt.user_lookup_loader
    def _load_user(_header: dict, payload: dict):
        # None (unknown user, disabled account, revoked session) answers 401.
        return live_user(db.session, payload["sub"], payload.get("sid"))
