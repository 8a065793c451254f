"""Signing in to the console: the API's accounts and rules, a session cookie, CSRF."""

from __future__ import annotations

import sqlalchemy as sa

from app.auth.models import AuthSession
from tests.conftest import make_app
from tests.console.conftest import csrf_of, sign_in


def cookie_header(response) -> str:
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("qf_console="))


def test_the_login_form_is_chinese_first_with_phone_and_password_inputs(console):
    page = console.get("/console/login")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in html
    assert 'name="phone"' in html and 'name="password"' in html
    assert "登录" in html


def test_signing_in_sets_an_httponly_samesite_cookie_scoped_to_the_console(console, create_user):
    answer = sign_in(console, create_user(roles=["grid_staff"], jurisdiction=["110105001024"]))
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/console/tips")
    cookie = cookie_header(answer)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back


def test_the_cookie_is_secure_over_tls(app, connection, create_user):
    client = app.test_client()
    user = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    token = csrf_of(client.get("/console/login", base_url="https://localhost"))
    answer = client.post(
        "/console/login",
        base_url="https://localhost",
        data={"phone": user.phone, "password": "Correct-Horse-Battery-9", "csrf_token": token},
    )
    assert answer.status_code == 303
    assert "Secure" in cookie_header(answer)


def test_a_wrong_password_is_refused_on_the_page_and_signs_nobody_in(console, create_user):
    user = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    answer = sign_in(console, user, password="not-the-password")
    assert answer.status_code == 401
    assert "手机号或密码错误" in answer.get_data(as_text=True)
    assert console.get("/console/tips").status_code == 303


def test_a_login_without_the_csrf_token_is_refused(console, create_user, session):
    user = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    console.get("/console/login")
    answer = console.post(
        "/console/login", data={"phone": user.phone, "password": "Correct-Horse-Battery-9"}
    )
    assert answer.status_code == 400
    assert session.scalar(sa.select(sa.func.count()).where(AuthSession.user_id == user.id)) == 0


def test_pages_send_a_signed_out_visitor_to_the_login_form(console):
    answer = console.get("/console/tips?status=submitted")
    assert answer.status_code == 303
    assert "/console/login?next=" in answer.headers["Location"]


def test_signing_in_returns_to_the_page_asked_for_but_never_to_another_site(console, create_user):
    user = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    for target, expected in (
        ("/console/tips?status=triaged", "/console/tips?status=triaged"),
        ("https://evil.example/console/", "/console/tips"),
    ):
        token = csrf_of(console.get("/console/login"))
        answer = console.post(
            "/console/login",
            data={
                "phone": user.phone,
                "password": "Correct-Horse-Battery-9",
                "csrf_token": token,
                "next": target,
            },
        )
        assert answer.headers["Location"].endswith(expected)


def test_logout_revokes_the_server_side_session(staff_console, session):
    console, user = staff_console
    token = csrf_of(console.get("/console/tips"))
    assert console.post("/console/logout", data={"csrf_token": token}).status_code == 303
    revoked = session.scalar(
        sa.select(AuthSession.revoked_reason).where(AuthSession.user_id == user.id)
    )
    assert revoked == "logout"
    assert console.get("/console/tips").status_code == 303


def test_a_session_revoked_elsewhere_ends_the_console_session(staff_console, session):
    console, user = staff_console
    assert console.get("/console/tips").status_code == 200
    session.execute(
        sa.update(AuthSession)
        .where(AuthSession.user_id == user.id)
        .values(revoked_at=sa.func.now())
    )
    session.commit()
    assert console.get("/console/tips").status_code == 303


def test_a_volunteer_may_sign_in_but_not_open_staff_pages(console, create_user):
    assert sign_in(console, create_user(roles=["volunteer"])).status_code == 303
    answer = console.get("/console/tips")
    assert answer.status_code == 403
    assert 'id="error-message"' in answer.get_data(as_text=True)


def test_the_language_switch_shows_the_pages_in_english(staff_console):
    console, _user = staff_console
    token = csrf_of(console.get("/console/tips"))
    answer = console.post(
        "/console/language", data={"lang": "en", "csrf_token": token, "next": "/console/tips"}
    )
    assert answer.status_code == 303
    html = console.get("/console/tips").get_data(as_text=True)
    assert '<html lang="en">' in html and "Triage queue" in html


def test_console_pages_run_only_this_servers_scripts_and_cannot_be_framed(console):
    policy = console.get("/console/login").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "img-src 'self' data:;" in policy  # no tile server configured


def test_the_tile_server_may_serve_images(database_url, connection):
    app = make_app(
        database_url,
        MAP_TILE_URL="https://webrd0{s}.is.autonavi.com/appmaptile?x={x}&y={y}&z={z}",
        MAP_TILE_CRS="gcj02",
    )
    policy = app.test_client().get("/console/login").headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://*.is.autonavi.com;" in policy
