"""Registration, login, refresh-token rotation with reuse detection, logout."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from app.auth.models import AuthSession, ConsentEvent, User
from app.auth.validators import id_check_character
from tests.conftest import PASSWORD

PROBLEM = "application/problem+json"


def id_number(serial: int) -> str:
    first17 = f"11010519850615{serial:03d}"
    return first17 + id_check_character(first17)


@pytest.fixture
def registration(area):
    def make(**overrides):
        body = {
            "phone": "13912345678",
            "password": PASSWORD,
            "real_name": "李娜",
            "id_number": id_number(7),
            "volunteer_types": ["community_volunteer", "rider_social_worker"],
            "skills": ["first_aid"],
            "home_community_id": str(area("110105001024").id),
            "consents": {"terms_version": "2026-11", "location_sharing": False, "id_number": True},
        }
        body.update(overrides)
        return body

    return make


def login(client, phone, password=PASSWORD, **kwargs):
    return client.post("/api/v1/auth/login", json={"phone": phone, "password": password}, **kwargs)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_register_stores_no_id_number_and_records_consents(client, session, registration):
    response = client.post("/api/v1/auth/register", json=registration())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()["user"]
    assert body["id_number_masked"] == "110***********" + id_number(7)[-4:]
    assert body["roles"] == ["volunteer"]
    assert body["verified_at"] is None
    assert body["consents"]["terms_version"] == "2026-11"
    assert body["consents"]["location_sharing"] is False
    user = session.get(User, body["id"])
    stored = " ".join(str(v) for v in vars(user).values())
    assert id_number(7) not in stored
    kinds = session.scalars(
        select(ConsentEvent.kind).where(ConsentEvent.user_id == user.id).order_by(ConsentEvent.kind)
    ).all()
    assert kinds == ["id_number", "location_sharing", "terms"]


@pytest.mark.parametrize(
    "override, pointer",
    [
        ({"phone": "12345"}, "/phone"),
        ({"id_number": "110105198506150071"}, "/id_number"),
        ({"password": "woaini1314"}, "/password"),
        ({"password": "13912345678ab"}, "/password"),
        ({"consents": {"terms_version": "2020-01"}}, "/consents/terms_version"),
        ({"volunteer_types": ["superhero"]}, "/volunteer_types/0"),
        ({"home_community_id": "00000000-0000-4000-8000-000000000000"}, "/home_community_id"),
    ],
)
def test_bad_registrations_are_refused_field_by_field(
    client, session, registration, override, pointer
):
    before = session.scalar(select(func.count()).select_from(User))
    response = client.post("/api/v1/auth/register", json=registration(**override))
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    assert pointer in {e["pointer"] for e in response.get_json()["errors"]}
    assert session.scalar(select(func.count()).select_from(User)) == before


def test_registration_signs_in_with_the_tokens_sign_in_gives(client, session, registration):
    answer = client.post("/api/v1/auth/register", json=registration()).get_json()
    assert set(answer) == {
        "user",
        "access_token",
        "refresh_token",
        "expires_in",
        "token_type",
        "device_token",
        "deletion_cancelled",
    }
    assert answer["deletion_cancelled"] is False
    me = client.get("/api/v1/me", headers=bearer(answer["access_token"]))
    assert me.status_code == 200
    assert me.get_json()["id"] == answer["user"]["id"]
    refreshed = client.post("/api/v1/auth/refresh", headers=bearer(answer["refresh_token"]))
    assert refreshed.status_code == 200
    # One session, as after signing in: logging out of it ends it.
    sessions = session.scalars(
        select(AuthSession).where(AuthSession.user_id == answer["user"]["id"])
    ).all()
    assert len(sessions) == 1
    # The device token counts as an earlier login's: the next sign-in is limited per device.
    again = client.post(
        "/api/v1/auth/login",
        json={
            "phone": registration()["phone"],
            "password": PASSWORD,
            "device_token": answer["device_token"],
        },
    )
    assert again.status_code == 200


def test_the_terms_are_published_and_a_refusal_names_the_version_expected(
    client, app, registration
):
    terms = client.get("/api/v1/terms")
    assert terms.status_code == 200
    body = terms.get_json()
    assert body["version"] == app.config["TERMS_VERSION"]
    assert "身份证" in body["texts"]["zh-CN"]
    assert "ID number" in body["texts"]["en"]
    assert "no-store" not in terms.headers.get("Cache-Control", "")
    refused = client.post(
        "/api/v1/auth/register", json=registration(consents={"terms_version": "2020-01"})
    )
    assert refused.status_code == 422
    assert refused.get_json()["current_terms_version"] == body["version"]


def test_registration_cannot_assign_roles(client, registration):
    response = client.post("/api/v1/auth/register", json=registration(roles=["admin"]))
    assert response.status_code == 422
    assert "/roles" in {e["pointer"] for e in response.get_json()["errors"]}


def test_one_account_per_phone_and_per_person(client, registration, ledger):
    assert client.post("/api/v1/auth/register", json=registration()).status_code == 201
    ledger.mark()
    same_phone = client.post("/api/v1/auth/register", json=registration(id_number=id_number(8)))
    same_person = client.post("/api/v1/auth/register", json=registration(phone="13912345679"))
    assert same_phone.status_code == same_person.status_code == 409
    assert same_phone.mimetype == same_person.mimetype == PROBLEM
    assert ledger.changes() == []  # no second account, no consent recorded for it


def test_login_answers_a_token_pair(client, create_user):
    user = create_user(phone="13700000001")
    response = login(client, "+86 137-0000-0001")
    assert response.status_code == 200
    body = response.get_json()
    assert body["expires_in"] == 15 * 60
    me = client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.get_json()["id"] == str(user.id)


def test_a_failed_login_does_not_reveal_whether_the_phone_exists(client, create_user):
    create_user(phone="13700000002")
    wrong_password = login(client, "13700000002", "Wrong-Password-123")
    unknown_phone = login(client, "13700000003", "Wrong-Password-123")
    assert wrong_password.status_code == unknown_phone.status_code == 401
    assert wrong_password.get_json()["detail"] == unknown_phone.get_json()["detail"]


def test_a_disabled_account_cannot_log_in(client, create_user):
    create_user(phone="13700000004", status="disabled")
    assert login(client, "13700000004").status_code == 401


def test_login_attempts_are_limited_per_account(client, create_user):
    create_user(phone="13700000005")
    statuses = [login(client, "13700000005", "Wrong-Password-123").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    # the right password is refused too while the account's bucket is full
    assert login(client, "13700000005").status_code == 429


def test_login_attempts_are_limited_per_client(app, client, create_user, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_CLIENT_RATE_LIMIT", "3 per minute")
    client_address = {"REMOTE_ADDR": "192.0.2.44"}
    phones = [f"1370000010{i}" for i in range(4)]
    statuses = [login(client, p, environ_base=client_address).status_code for p in phones]
    assert statuses == [401, 401, 401, 429]
    elsewhere = login(client, "13700000109", environ_base={"REMOTE_ADDR": "192.0.2.45"})
    assert elsewhere.status_code == 401


def test_refresh_rotates_the_pair(client, create_user):
    create_user(phone="13700000006")
    first = login(client, "13700000006").get_json()
    second = client.post("/api/v1/auth/refresh", headers=bearer(first["refresh_token"]))
    assert second.status_code == 200
    pair = second.get_json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert client.get("/api/v1/me", headers=bearer(pair["access_token"])).status_code == 200


def test_refresh_token_reuse_revokes_the_whole_family(client, session, create_user):
    create_user(phone="13700000007")
    first = login(client, "13700000007").get_json()
    second = client.post("/api/v1/auth/refresh", headers=bearer(first["refresh_token"])).get_json()
    # the stolen first refresh token comes back
    replay = client.post("/api/v1/auth/refresh", headers=bearer(first["refresh_token"]))
    assert replay.status_code == 401
    assert replay.mimetype == PROBLEM
    # every token of the session is dead now: the legitimate holder's too
    assert client.get("/api/v1/me", headers=bearer(second["access_token"])).status_code == 401
    assert (
        client.post("/api/v1/auth/refresh", headers=bearer(second["refresh_token"])).status_code
        == 401
    )
    revoked = session.scalars(select(AuthSession.revoked_reason)).all()
    assert "refresh_token_reuse" in revoked


def test_an_access_token_is_not_a_refresh_token(client, create_user):
    create_user(phone="13700000008")
    pair = login(client, "13700000008").get_json()
    assert (
        client.post("/api/v1/auth/refresh", headers=bearer(pair["access_token"])).status_code == 401
    )
    assert client.get("/api/v1/me", headers=bearer(pair["refresh_token"])).status_code == 401


def test_logout_ends_the_session_at_once(client, create_user):
    create_user(phone="13700000009")
    pair = login(client, "13700000009").get_json()
    assert (
        client.post("/api/v1/auth/logout", headers=bearer(pair["access_token"])).status_code == 204
    )
    assert client.get("/api/v1/me", headers=bearer(pair["access_token"])).status_code == 401
    assert (
        client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"])).status_code
        == 401
    )


def test_disabling_an_account_ends_its_sessions(client, create_user, token_for, session):
    user = create_user(home="110105001024")
    headers = token_for(user)
    admin = token_for("admin")
    response = client.patch(f"/api/v1/users/{user.id}", json={"status": "disabled"}, headers=admin)
    assert response.status_code == 200
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    session.expire_all()
    ended = session.execute(
        select(AuthSession.revoked_at, AuthSession.revoked_reason).where(
            AuthSession.user_id == user.id
        )
    ).all()
    assert [reason for _at, reason in ended] == ["account_disabled"]
    assert all(at is not None for at, _reason in ended)
    # Enabled again, the account signs in afresh: the old token stays dead.
    enabled = client.patch(f"/api/v1/users/{user.id}", json={"status": "active"}, headers=admin)
    assert enabled.status_code == 200
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_changing_the_password_signs_out_other_sessions(client, create_user):
    create_user(phone="13700000010")
    here = login(client, "13700000010").get_json()
    elsewhere = login(client, "13700000010").get_json()
    response = client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "Another-Strong-Pass-42"},
        headers=bearer(here["access_token"]),
    )
    assert response.status_code == 204
    assert client.get("/api/v1/me", headers=bearer(here["access_token"])).status_code == 200
    assert client.get("/api/v1/me", headers=bearer(elsewhere["access_token"])).status_code == 401
    assert login(client, "13700000010", "Another-Strong-Pass-42").status_code == 200


def test_other_spellings_of_a_phone_share_its_login_limit(client, create_user):
    create_user(phone="13700000011")
    spellings = [
        "13700000011",
        "+8613700000011",
        "+86 137 0000 0011",
        "0086-137-0000-0011",
        "86 13700000011",
        "(137)00000011",
    ]
    statuses = [login(client, p, "Wrong-Password-123").status_code for p in spellings]
    assert statuses == [401] * 5 + [429]


def test_a_device_that_signed_in_before_is_not_held_to_the_accounts_limit(client, create_user):
    create_user(phone="13700000012")
    device = login(client, "13700000012").get_json()["device_token"]
    for _ in range(8):  # more than the account's 5 a minute
        again = client.post(
            "/api/v1/auth/login",
            json={"phone": "13700000012", "password": PASSWORD, "device_token": device},
        )
        assert again.status_code == 200


def test_a_limit_breach_logs_no_phone_number(client, create_user, caplog):
    create_user(phone="13700000013")
    with caplog.at_level(logging.DEBUG):
        for _ in range(6):
            login(client, "13700000013", "Wrong-Password-123")
    assert "13700000013" not in caplog.text


def test_behind_a_proxy_each_client_gets_its_own_bucket(database_url, connection):
    from tests.conftest import make_app

    proxied = make_app(database_url, PROXY_HOPS=1, LOGIN_CLIENT_RATE_LIMIT="2 per minute")
    proxied_client = proxied.test_client()

    def attempt(client_address):
        return login(
            proxied_client,
            "13700000099",
            "Wrong-Password-123",
            headers={"X-Forwarded-For": client_address},
            environ_base={"REMOTE_ADDR": "10.0.0.1"},  # the load balancer
        ).status_code

    assert [attempt("198.51.100.1") for _ in range(3)] == [401, 401, 429]
    assert attempt("198.51.100.2") == 401
