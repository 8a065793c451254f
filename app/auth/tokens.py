"""flask-jwt-extended wiring: every verified token loads its user and checks its session."""

from __future__ import annotations

from flask_jwt_extended import JWTManager

from app.auth.service import live_user
from app.extensions import db


def init_token_loading(jwt: JWTManager) -> None:
    @jwt.user_identity_loader
    def _identity(identity):
        return str(identity)

    @jwt.user_lookup_loader
    def _load_user(_header: dict, payload: dict):
        # None (unknown user, disabled account, revoked session) answers 401.
        return live_user(db.session, payload["sub"], payload.get("sid"))
