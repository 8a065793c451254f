"""A tip's photos in the console, and the session cookie behind a TLS-terminating proxy."""

from __future__ import annotations

import sqlalchemy as sa

from app.core.audit import AuditEvent
from tests.conftest import PASSWORD, make_app
from tests.console.conftest import csrf_of, sign_in
from tests.console.test_triage import submit_tip
from tests.tips.conftest import jpeg, upload


def test_a_tips_photos_show_to_staff_of_its_area_and_each_view_is_audited(
    staff_console, session, create_user, token_for
):
    console, user = staff_console
    reporter = create_user(roles=["volunteer"], home="110105001024")
    headers = token_for(reporter)
    photo = upload(console, jpeg(), headers=headers).get_json()["id"]
    tip_id = submit_tip(console, headers=headers, media_ids=[photo])
    html = console.get(f"/console/tips/{tip_id}").get_data(as_text=True)
    assert f"/console/media/{photo}/thumbnail" in html
    answer = console.get(f"/console/media/{photo}/thumbnail")
    assert answer.status_code == 200 and answer.mimetype == "image/jpeg"
    assert answer.headers["Cache-Control"] == "no-store"
    viewed = session.scalar(
        sa.select(sa.func.count()).where(
            AuditEvent.action == "media.viewed", AuditEvent.actor_id == user.id
        )
    )
    assert viewed == 1


def test_staff_of_another_area_cannot_see_the_photo(console, create_user, token_for, session):
    reporter = create_user(roles=["volunteer"], home="110105001024")
    headers = token_for(reporter)
    photo = upload(console, jpeg(), headers=headers).get_json()["id"]
    submit_tip(console, headers=headers, media_ids=[photo])
    other = create_user(roles=["grid_staff"], jurisdiction=["110105001025"])
    sign_in(console, other)
    for path in (f"/console/media/{photo}", f"/console/media/{photo}/thumbnail"):
        answer = console.get(path)
        assert answer.status_code == 404, path
        assert answer.mimetype == "text/html"  # a page saying so, not the image
    viewed = session.scalar(
        sa.select(sa.func.count()).where(
            AuditEvent.action == "media.viewed", AuditEvent.actor_id == other.id
        )
    )
    assert viewed == 0


def test_the_cookie_is_secure_behind_a_trusted_tls_proxy(database_url, connection, create_user):
    app = make_app(database_url, PROXY_HOPS=1)
    client = app.test_client()
    user = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    token = csrf_of(client.get("/console/login", headers=proxied))
    answer = client.post(
        "/console/login",
        headers=proxied,
        data={"phone": user.phone, "password": PASSWORD, "csrf_token": token},
    )
    assert answer.status_code == 303
    cookie = next(c for c in answer.headers.getlist("Set-Cookie") if c.startswith("qf_console="))
    assert "Secure" in cookie
