"""Who is signed in to the staff console, and who may call each of its pages.

The console keeps a **session cookie**, not tokens in the page's memory. The cookie is Flask's
signed session (SECRET_KEY), and what it holds is a *reference*: the user id and the id of a
server-side login session (`AuthSession`, the same row an API sign-in makes). Every request
loads the user through `live_user`, so everything that ends an API session ends a console
session at once: logout, a password change, a disabled account, an admin's revocation. Tokens
in memory would be lost on every page load of a server-rendered console (it would need a
refresh token in script-readable storage, which one XSS bug would leak); the cookie is
HttpOnly, so script never reads it.

The cookie is scoped to /console (the API never sees it, and keeps answering bearer tokens
only), HttpOnly, SameSite=Lax, and Secure whenever the request came over TLS (directly, or
behind PROXY_HOPS trusted proxies that say X-Forwarded-Proto: https).

A cookie is sent by the browser on its own, so every state-changing request (every POST) must
also carry a **CSRF token**: a random value kept in the session and written into each form as a
hidden `csrf_token` field (script sends it as `X-CSRF-Token`), compared in constant time
before any view runs. SameSite=Lax already stops cross-site POSTs in current browsers; the
token also covers older ones and same-site subdomains. Flask-WTF is not installed and this is
twenty lines, so no dependency is added for it. The login form carries a token too (login
CSRF: a stranger must not sign a victim in to the stranger's account), and signing in replaces
the session (no fixation).
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable

from flask import abort, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import refresh

from app.auth import service as auth_service
from app.core.auth import has_any_role
from app.core.blueprint import ACCESS_ATTR, Access
from app.core.i18n import CHOSEN_LOCALE, SUPPORTED_LOCALES
from app.extensions import db

COOKIE_NAME = "qf_console"
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, kept to the console's paths and Secure over TLS."""

    def get_cookie_name(self, app) -> str:
        return COOKIE_NAME

    def get_cookie_path(self, app) -> str:
        return COOKIE_PATH

    def get_cookie_httponly(self, app) -> bool:
        return True

    def get_cookie_samesite(self, app) -> str:
        return app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def check_csrf() -> None:
    """Before every console request: a POST without this session's token is a 400."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    expected = session.get(CSRF_FIELD)
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, description="csrf")


def choose_locale() -> None:
    """The language the reader chose with the page's switch (else Accept-Language decides)."""
    if session.get("lang") in SUPPORTED_LOCALES:
        request.environ[CHOSEN_LOCALE] = session["lang"]
        refresh()


def sign_in(user_id: str, session_id: str) -> None:
    """A new console session for a login the auth service just made."""
    lang = session.get("lang")
    session.clear()
    session.update(uid=user_id, sid=session_id, lang=lang)
    csrf_token()


_USER = "qunfang.console.user"


def signed_in_user():
    """The live user of this console session, or None (no session, revoked, disabled); looked
    up once per request (kept on the request, not on `g`, which can outlive one)."""
    if _USER not in request.environ:
        uid, sid = session.get("uid"), session.get("sid")
        live = auth_service.live_user(db.session, uid, sid) if uid and sid else None
        request.environ[_USER] = live
    return request.environ[_USER]


def user_if_known():
    """The user this request already looked up (for the page header), without a lookup."""
    return request.environ.get(_USER)


def _declare(func: Callable, access: Access, check: Callable[[], object]) -> Callable:
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        answer = check()
        if answer is not None:
            return answer
        return func(*args, **kwargs)

    setattr(wrapper, ACCESS_ATTR, access)
    return wrapper


def public(func: Callable) -> Callable:
    """Anyone may open this page (the login form)."""
    return _declare(func, Access("public"), lambda: None)


def staff_required(*roles: str) -> Callable[[Callable], Callable]:
    """A signed-in console session whose user holds one of `roles` (or a role including one):
    without a session, the login page; with another role, 403."""

    def check():
        user = signed_in_user()
        if user is None:
            session.pop("uid", None)
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")), 303)
        if not has_any_role(user.roles, roles):
            abort(403)
        return None

    return lambda func: _declare(func, Access("session", tuple(roles)), check)
