"""Registration, login and tokens; the caller's own profile; staff administration of accounts."""

from __future__ import annotations

import uuid
from dataclasses import asdict

from flask import current_app
from flask.views import MethodView
from flask_jwt_extended import get_jwt
from flask_limiter.util import get_remote_address

from app.auth import login_limits, service
from app.auth.schemas import (
    AccountCreateSchema,
    AccountUpdateSchema,
    LoginAnswerSchema,
    LoginSchema,
    MeUpdateSchema,
    PasswordChangeSchema,
    RegisterAnswerSchema,
    RegisterSchema,
    TermsSchema,
    TokenPairSchema,
    UserQueryArgsSchema,
    UserSchema,
)
from app.config import TERMS_LANGUAGES, terms_path
from app.core.auth import COMMUNITY_ADMIN, GRID_STAFF, current_user
from app.core.blueprint import Blueprint
from app.core.caching import public_data
from app.core.pagination import PageArgsSchema, page_of, paginate
from app.extensions import db, limiter

auth_blp = Blueprint(
    "auth", __name__, url_prefix="/api/v1/auth", description="Sign-up and sessions"
)
me_blp = Blueprint("me", __name__, url_prefix="/api/v1/me", description="The caller's own account")
users_blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="Accounts (staff)")
terms_blp = Blueprint(
    "terms", __name__, url_prefix="/api/v1/terms", description="The terms volunteers accept"
)


def _client_key() -> str:
    return f"client:{get_remote_address()}"


def _settings() -> service.AuthSettings:
    return service.AuthSettings.from_config(current_app.config)


@auth_blp.route("/register")
class Register(MethodView):
    decorators = (
        limiter.limit(lambda: current_app.config["REGISTER_RATE_LIMIT"], key_func=_client_key),
    )

    @auth_blp.public
    @auth_blp.arguments(RegisterSchema)
    @auth_blp.response(201, RegisterAnswerSchema)
    def post(self, body):
        """Register as a volunteer, under your real name, and be signed in.

        The resident ID number is checked (GB 11643) and never stored: only a keyed hash (one
        account per person) and a masked form. Consent to the current terms
        (`GET /api/v1/terms`) is required: another version answers 422 with
        `current_terms_version`. Processing the ID number is a separate consent
        (`consents.id_number`, required), and so is location sharing for dispatch (off unless
        given). Under 18 by the ID number's birth date answers 422 `under-age`, unless minors
        may register with a guardian's consent (`guardian`). The answer holds the new account
        and the tokens sign-in gives.
        """
        settings = _settings()
        user = service.register_volunteer(
            db.session,
            body,
            settings=settings,
            minors_allowed=current_app.config["MINORS_ALLOWED_WITH_GUARDIAN"],
        )
        pair = service.start_session(db.session, user, settings)
        device_token = login_limits.issue_device_token(user.phone)
        return {**asdict(pair), "device_token": device_token, "user": user}


@terms_blp.route("")
class Terms(MethodView):
    @terms_blp.public
    @public_data
    @terms_blp.response(200, TermsSchema)
    def get(self):
        """The terms a registration must accept now: their version, and their text in Chinese
        and English (Markdown)."""
        directory, version = current_app.config["TERMS_DIR"], current_app.config["TERMS_VERSION"]
        texts = {
            language: terms_path(directory, version, language).read_text(encoding="utf-8")
            for language in TERMS_LANGUAGES
        }
        return {"version": version, "texts": {"zh_cn": texts["zh-CN"], "en": texts["en"]}}


@auth_blp.route("/login")
class Login(MethodView):
    decorators = login_limits.login_limits()

    @auth_blp.public
    @auth_blp.arguments(LoginSchema)
    @auth_blp.response(200, LoginAnswerSchema)
    @auth_blp.alt_response(401, response="UNAUTHORIZED")
    @auth_blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, body):
        """Sign in with phone and password: a short-lived access token, a refresh token, and a
        device token to send back with this device's next logins.

        Wrong phone, wrong password and disabled account answer the same 401. Attempts are
        limited: with this device's `device_token`, per device; without, per account and per
        client (429 with Retry-After). Others' failed attempts never stop a device that signed
        in before. Signing in while your account waits to be erased cancels the deletion
        (`deletion_cancelled: true`).
        """
        pair = service.login(db.session, body["phone"], body["password"], _settings())
        return {**asdict(pair), "device_token": login_limits.issue_device_token(body["phone"])}


@auth_blp.route("/refresh")
class Refresh(MethodView):
    @auth_blp.refresh_token_required
    @auth_blp.response(200, TokenPairSchema)
    def post(self):
        """Trade a refresh token (as the bearer token) for a new pair; each works once.

        Presenting a used refresh token again revokes the whole session.
        """
        claims = get_jwt()
        try:
            pair = service.refresh(
                db.session, current_user(), claims["jti"], claims["sid"], _settings()
            )
        except service.RefreshTokenReused:
            db.session.commit()  # the revocation must stand although the answer is an error
            raise
        return asdict(pair)


@auth_blp.route("/logout")
class Logout(MethodView):
    @auth_blp.login_required
    @auth_blp.response(204)
    def post(self):
        """End this session: its access and refresh tokens stop working at once."""
        service.revoke_session(db.session, uuid.UUID(get_jwt()["sid"]), "logout")


@me_blp.route("")
class Me(MethodView):
    @me_blp.login_required
    @me_blp.response(200, UserSchema)
    def get(self):
        """Your own account."""
        return current_user()

    @me_blp.login_required
    @me_blp.arguments(MeUpdateSchema)
    @me_blp.response(200, UserSchema)
    def patch(self, body):
        """Change your volunteer types, skills, home community, or consents.

        Roles, verification and identity are not yours to change: such fields answer 422.
        Moving to another community withdraws your verification until its staff verify you.
        Withdrawing the ID-number consent erases the number's hash and masked form at once,
        and your verification with them.
        """
        return service.update_me(db.session, current_user(), body)


@me_blp.route("/password")
class MyPassword(MethodView):
    @me_blp.login_required
    @me_blp.arguments(PasswordChangeSchema)
    @me_blp.response(204)
    def post(self, body):
        """Change your password; every other session is signed out."""
        service.change_password(
            db.session,
            current_user(),
            body["current_password"],
            body["new_password"],
            keep_session=uuid.UUID(get_jwt()["sid"]),
            settings=_settings(),
        )


@users_blp.route("")
class Users(MethodView):
    @users_blp.role_required(GRID_STAFF)
    @users_blp.arguments(UserQueryArgsSchema, location="query")
    @users_blp.arguments(PageArgsSchema, location="query")
    @users_blp.response(200, page_of(UserSchema))
    def get(self, filters, page):
        """Accounts inside your jurisdiction (by home community or granted area)."""
        query, _ = service.list_visible_users(db.session, current_user(), filters)
        return paginate(db.session, query, **page)

    @users_blp.role_required(COMMUNITY_ADMIN)
    @users_blp.arguments(AccountCreateSchema)
    @users_blp.response(201, UserSchema)
    def post(self, body):
        """Create an account with roles and a jurisdiction (inside your own)."""
        return service.create_account(db.session, current_user(), body, _settings())


@users_blp.route("/<uuid:user_id>")
class UserById(MethodView):
    @users_blp.role_required(GRID_STAFF)
    @users_blp.response(200, UserSchema)
    def get(self, user_id):
        """One account inside your jurisdiction."""
        return service.get_visible_user(db.session, current_user(), user_id)

    @users_blp.role_required(COMMUNITY_ADMIN)
    @users_blp.arguments(AccountUpdateSchema)
    @users_blp.response(200, UserSchema)
    def patch(self, body, user_id):
        """Change an account's roles, jurisdiction, status or name."""
        actor = current_user()
        user = service.get_visible_user(db.session, actor, user_id)
        return service.update_account(db.session, actor, user, body)


@users_blp.route("/<uuid:user_id>/verify")
class VerifyUser(MethodView):
    @users_blp.role_required(GRID_STAFF)
    @users_blp.response(200, UserSchema)
    def post(self, user_id):
        """Verify a volunteer's real-name registration (after checking their ID in person)."""
        actor = current_user()
        user = service.get_visible_user(db.session, actor, user_id)
        return service.verify_volunteer(db.session, actor, user)
