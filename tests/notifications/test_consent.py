"""The SMS consent: separate from the terms and from location sharing, recorded each time,
given and withdrawn by the volunteer with PATCH /api/v1/me."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.auth.models import ConsentEvent
from tests.core.test_errors import assert_problem


def _events(session, user):
    session.expire_all()
    return session.execute(
        select(ConsentEvent.kind, ConsentEvent.value)
        .where(ConsentEvent.user_id == user.id, ConsentEvent.kind == "sms")
        .order_by(ConsentEvent.recorded_at)
    ).all()


def test_sms_consent_is_off_until_given_and_recorded(client, token_for, create_user, session):
    user = create_user()
    headers = token_for(user)
    before = client.get("/api/v1/me", headers=headers).json["consents"]
    assert (before["sms_consent"], before["sms_consent_changed_at"]) == (False, None)

    given = client.patch("/api/v1/me", json={"sms_consent": True}, headers=headers)
    assert given.status_code == 200
    assert given.json["consents"]["sms_consent"] is True
    assert given.json["consents"]["sms_consent_changed_at"] is not None
    assert given.json["consents"]["location_sharing"] is False  # a separate consent

    again = client.patch("/api/v1/me", json={"sms_consent": True}, headers=headers)
    assert again.json["consents"] == given.json["consents"]  # no change, nothing recorded

    withdrawn = client.patch("/api/v1/me", json={"sms_consent": False}, headers=headers)
    assert withdrawn.json["consents"]["sms_consent"] is False
    assert _events(session, user) == [("sms", "granted"), ("sms", "withdrawn")]


@pytest.mark.parametrize("value", ["maybe", None, 2, ["yes"]])
def test_bad_sms_consent_is_a_problem_and_changes_nothing(
    client, token_for, create_user, session, value
):
    user = create_user(sms_consent=True)
    response = client.patch("/api/v1/me", json={"sms_consent": value}, headers=token_for(user))
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["pointer"] == "/sms_consent"
    session.expire_all()
    assert session.get(type(user), user.id).sms_consent is True
    assert _events(session, user) == []


def test_sms_consent_with_an_unknown_field_is_a_problem_and_changes_nothing(
    client, token_for, create_user, session
):
    user = create_user()
    body = {"sms_consent": True, "sms_number": "13800138000"}
    response = client.patch("/api/v1/me", json=body, headers=token_for(user))
    assert_problem(response, 422)
    session.expire_all()
    assert session.get(type(user), user.id).sms_consent is False
    assert _events(session, user) == []


def test_only_the_volunteer_sets_their_consent(client):
    assert_problem(client.patch("/api/v1/me", json={"sms_consent": True}), 401)
