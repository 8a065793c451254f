"""Consents that match PIPL (#21 item 5): the ID number's own consent, recorded and withdrawable
(erasing at once what rested on it), and the minimum age read from the ID number."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from app.auth import service
from app.auth.models import ConsentEvent, GuardianConsent, User, phone_lookup
from app.auth.validators import age_on, birth_date, id_check_character
from app.extensions import db
from tests.conftest import PASSWORD

PROBLEM = "application/problem+json"
NANLANG = "110105001024"


def beijing_today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()


def born_id(born: dt.date, serial: int = 7) -> str:
    first17 = f"110105{born:%Y%m%d}{serial:03d}"
    return first17 + id_check_character(first17)


def years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


@pytest.fixture
def registration(area):
    def make(**overrides):
        body = {
            "phone": "13912345678",
            "password": PASSWORD,
            "real_name": "李娜",
            "id_number": born_id(dt.date(1985, 6, 15)),
            "home_community_id": str(area(NANLANG).id),
            "consents": {"terms_version": "2026-11", "id_number": True},
        }
        body.update(overrides)
        return body

    return make


def counts(session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count()).select_from(User)),
        session.scalar(select(func.count()).select_from(ConsentEvent)),
        session.scalar(select(func.count()).select_from(GuardianConsent)),
    )


def events(session, user_id) -> list[tuple[str, str]]:
    return [
        (kind, value)
        for kind, value in session.execute(
            select(ConsentEvent.kind, ConsentEvent.value)
            .where(ConsentEvent.user_id == user_id)
            .order_by(ConsentEvent.recorded_at, ConsentEvent.kind)
        )
    ]


def stored_row(connection, user_id) -> dict:
    """The users row as the database holds it now, not as the session remembers it."""
    return dict(
        connection.execute(
            text(
                "SELECT id_number_digest, id_number_masked, id_number_consent, "
                "id_number_consent_changed_at, verified_at, verified_by FROM users WHERE id = :id"
            ),
            {"id": user_id},
        )
        .mappings()
        .one()
    )


# --- the ID number's consent --------------------------------------------------------------------


def test_each_consent_is_recorded_as_an_event(client, session, registration):
    body = registration(consents={"terms_version": "2026-11", "id_number": True})
    body["consents"]["location_sharing"] = True
    answer = client.post("/api/v1/auth/register", json=body)
    assert answer.status_code == 201, answer.get_json()
    user = answer.get_json()["user"]
    assert user["consents"]["id_number_consent"] is True
    assert user["consents"]["id_number_consent_changed_at"]
    headers = {"Authorization": f"Bearer {answer.get_json()['access_token']}"}
    assert (
        client.patch("/api/v1/me", json={"sms_consent": True}, headers=headers).status_code == 200
    )
    assert sorted(events(session, user["id"])) == [
        ("id_number", "granted"),
        ("location_sharing", "granted"),
        ("sms", "granted"),
        ("terms", "2026-11"),
    ]


@pytest.mark.parametrize(
    "consents", [{"terms_version": "2026-11"}, {"terms_version": "2026-11", "id_number": False}]
)
def test_an_id_number_without_its_consent_is_refused_and_nothing_stored(
    client, session, registration, consents
):
    before = counts(session)
    response = client.post("/api/v1/auth/register", json=registration(consents=consents))
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    assert {e["pointer"] for e in response.get_json()["errors"]} == {"/consents/id_number"}
    assert counts(session) == before


def test_withdrawing_the_id_number_consent_erases_it_and_the_verification_at_once(
    client, session, connection, registration, token_for
):
    answer = client.post("/api/v1/auth/register", json=registration()).get_json()
    user_id = answer["user"]["id"]
    staff = token_for("grid_staff")  # of 南郎家园 (tests/conftest.py)
    assert client.post(f"/api/v1/users/{user_id}/verify", headers=staff).status_code == 200
    assert stored_row(connection, user_id)["id_number_digest"] is not None

    headers = {"Authorization": f"Bearer {answer['access_token']}"}
    withdrawn = client.patch("/api/v1/me", json={"id_number_consent": False}, headers=headers)
    assert withdrawn.status_code == 200, withdrawn.get_json()
    body = withdrawn.get_json()
    assert body["id_number_masked"] is None
    assert body["verified_at"] is None
    assert body["consents"]["id_number_consent"] is False
    row = stored_row(connection, user_id)
    assert row["id_number_digest"] is None
    assert row["id_number_masked"] is None
    assert row["id_number_consent"] is False
    assert row["id_number_consent_changed_at"] is not None
    assert row["verified_at"] is None and row["verified_by"] is None
    assert events(session, user_id)[-1] == ("id_number", "withdrawn")
    # The person may register again elsewhere: nothing of the number is left to collide with.
    again = client.patch("/api/v1/me", json={"id_number_consent": False}, headers=headers)
    assert again.status_code == 200
    assert events(session, user_id).count(("id_number", "withdrawn")) == 1


def test_the_id_number_consent_is_not_given_back_without_the_number(
    client, session, connection, registration
):
    answer = client.post("/api/v1/auth/register", json=registration()).get_json()
    headers = {"Authorization": f"Bearer {answer['access_token']}"}
    user_id = answer["user"]["id"]
    client.patch("/api/v1/me", json={"id_number_consent": False}, headers=headers)
    before = events(session, user_id)
    refused = client.patch(
        "/api/v1/me", json={"id_number_consent": True, "skills": ["first_aid"]}, headers=headers
    )
    assert refused.status_code == 422
    assert refused.mimetype == PROBLEM
    assert "/id_number_consent" in {e["pointer"] for e in refused.get_json()["errors"]}
    assert stored_row(connection, user_id)["id_number_consent"] is False
    assert session.get(User, user_id).skills == []
    assert events(session, user_id) == before


def test_a_staff_created_account_with_an_id_number_needs_the_persons_consent(
    client, session, token_for
):
    admin = token_for("admin")
    body = {
        "phone": "13912345670",
        "password": PASSWORD,
        "real_name": "王芳",
        "id_number": born_id(dt.date(1980, 2, 3)),
        "roles": ["volunteer"],
    }
    before = counts(session)
    refused = client.post("/api/v1/users", json=body, headers=admin)
    assert refused.status_code == 422
    assert {e["pointer"] for e in refused.get_json()["errors"]} == {"/id_number_consent"}
    assert counts(session) == before
    created = client.post("/api/v1/users", json={**body, "id_number_consent": True}, headers=admin)
    assert created.status_code == 201, created.get_json()
    assert events(session, created.get_json()["id"]) == [("id_number", "granted")]


# --- the minimum age ----------------------------------------------------------------------------


def test_someone_under_18_is_refused_with_a_problem_naming_the_rule_and_nothing_stored(
    client, session, registration
):
    the_day_before = years_before(beijing_today(), 18) + dt.timedelta(days=1)
    before = counts(session)
    response = client.post(
        "/api/v1/auth/register", json=registration(id_number=born_id(the_day_before))
    )
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    problem = response.get_json()
    assert problem["type"].endswith(":under-age")
    assert problem["minimum_age"] == 18
    assert {e["pointer"] for e in problem["errors"]} == {"/id_number"}
    assert counts(session) == before


def test_someone_18_today_is_accepted(client, session, registration):
    eighteen_today = years_before(beijing_today(), 18)
    response = client.post(
        "/api/v1/auth/register", json=registration(id_number=born_id(eighteen_today))
    )
    assert response.status_code == 201, response.get_json()
    user = session.get(User, response.get_json()["user"]["id"])
    # The birth date is read, not kept: nothing in the row holds it.
    assert f"{eighteen_today:%Y%m%d}" not in " ".join(str(v) for v in vars(user).values())


def test_a_guardian_is_refused_where_minors_may_not_register(client, session, registration):
    minor = born_id(dt.date(beijing_today().year - 15, 1, 1))
    guardian = {"name": "李强", "phone": "13911112222", "consent": True}
    before = counts(session)
    response = client.post(
        "/api/v1/auth/register", json=registration(id_number=minor, guardian=guardian)
    )
    assert response.status_code == 422
    assert response.get_json()["type"].endswith(":under-age")
    assert counts(session) == before


@pytest.mark.parametrize(
    "guardian, pointer",
    [
        (None, "/guardian"),
        ({"name": "李强", "phone": "13911112222", "consent": False}, "/guardian"),
        ({"name": "李强", "phone": "12345678901", "consent": True}, "/guardian/phone"),
    ],
)
def test_with_minors_allowed_a_minor_needs_a_guardians_consent(
    app, session, registration, guardian, pointer
):
    values = registration(id_number=born_id(dt.date(2010, 5, 5)))
    values["guardian"] = guardian
    values["consents"]["location_sharing"] = False
    before = counts(session)
    with pytest.raises(service.Unprocessable) as refused:
        service.register_volunteer(
            db.session,
            values,
            settings=service.AuthSettings.from_config(app.config),
            minors_allowed=True,
            today=dt.date(2026, 12, 3),
        )
    assert {e["pointer"] for e in refused.value.extra["errors"]} == {pointer}
    session.rollback()
    assert counts(session) == before


def test_with_minors_allowed_the_guardians_consent_is_recorded(app, session, registration):
    values = registration(id_number=born_id(dt.date(2010, 5, 5)))
    values["guardian"] = {"name": " 李强 ", "phone": "+86 139-1111-2222", "consent": True}
    values["consents"]["location_sharing"] = False
    user = service.register_volunteer(
        db.session,
        values,
        settings=service.AuthSettings.from_config(app.config),
        minors_allowed=True,
        today=dt.date(2026, 12, 3),
    )
    recorded = session.get(GuardianConsent, user.id)
    assert (recorded.guardian_name, recorded.guardian_phone) == ("李强", "13911112222")
    assert ("guardian", "granted") in events(session, user.id)


def test_the_setting_lets_a_minor_register_with_a_guardian(
    app, client, session, registration, monkeypatch
):
    monkeypatch.setitem(app.config, "MINORS_ALLOWED_WITH_GUARDIAN", True)
    minor = born_id(dt.date(beijing_today().year - 15, 1, 1))
    body = registration(
        id_number=minor, guardian={"name": "李强", "phone": "13911112222", "consent": True}
    )
    response = client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.get_json()
    assert session.get(GuardianConsent, response.get_json()["user"]["id"]) is not None


@pytest.mark.parametrize(
    "born, today, age",
    [
        (dt.date(2008, 12, 3), dt.date(2026, 12, 3), 18),
        (dt.date(2008, 12, 4), dt.date(2026, 12, 3), 17),
        (dt.date(2008, 2, 29), dt.date(2026, 2, 28), 17),
        (dt.date(2008, 2, 29), dt.date(2026, 3, 1), 18),
        (dt.date(1900, 1, 1), dt.date(2026, 12, 3), 126),
    ],
)
def test_age_turns_on_the_birthday(born, today, age):
    assert age_on(born, today) == age
    assert birth_date(born_id(born)) == born


@pytest.mark.parametrize(
    "id_number",
    [
        born_id(dt.date(1985, 6, 15))[:-1] + "0",  # check character wrong
        "11010519850230" + "0071",  # 30 February
        "990105198506150071",  # no such province
        "11010599990101" + "0071",  # born in the future
    ],
)
def test_hostile_id_numbers_are_refused_before_any_age_is_read(
    client, session, registration, id_number
):
    before = counts(session)
    response = client.post("/api/v1/auth/register", json=registration(id_number=id_number))
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    assert "/id_number" in {e["pointer"] for e in response.get_json()["errors"]}
    assert not response.get_json()["type"].endswith(":under-age")
    assert counts(session) == before


def test_the_operators_command_needs_the_consent_with_an_id_number(app, session):
    runner = app.test_cli_runner()
    args = ["users", "create", "--role", "volunteer", "--phone", "13500000009"]
    args += ["--password", "Grid-Staff-Pass-2026", "--name", "赵强"]
    args += ["--id-number", born_id(dt.date(1979, 9, 9))]
    refused = runner.invoke(args=args)
    assert refused.exit_code != 0
    assert "consent" in refused.output
    assert (
        session.scalar(select(User).where(User.phone_hmac == phone_lookup("13500000009"))) is None
    )
    given = runner.invoke(args=[*args, "--id-number-consent"])
    assert given.exit_code == 0, given.output
    user = session.scalar(select(User).where(User.phone_hmac == phone_lookup("13500000009")))
    assert user.id_number_consent is True
    assert events(session, user.id) == [("id_number", "granted")]
