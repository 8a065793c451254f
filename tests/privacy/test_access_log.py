"""GET /api/v1/me/access-log: which role read my track, reporter details or profile, and why."""

from __future__ import annotations

import uuid

import pytest

from app.core import audit
from tests.tips.conftest import tip_body

JIANWAI = "110105001024"


@pytest.fixture
def submit(client):
    def make(headers, **overrides):
        headers = {**headers, "Idempotency-Key": str(uuid.uuid4())}
        return client.post("/api/v1/tips", json=tip_body(**overrides), headers=headers)

    return make


@pytest.fixture
def staff(create_user, token_for):
    user = create_user(roles=["grid_staff"], jurisdiction=[JIANWAI])
    return user, token_for(user)


def _log(client, headers, **query):
    answer = client.get("/api/v1/me/access-log", headers=headers, query_string=query)
    assert answer.status_code == 200, answer.json
    return answer.json


def test_staff_reading_my_reporter_details_shows_their_role_and_purpose(
    client, submit, staff, create_user, token_for
):
    staff_user, staff_headers = staff
    me = create_user()
    mine = token_for(me)
    tip = submit(headers=mine, police_contact_consent=True).json["id"]
    assert _log(client, mine)["total"] == 0
    shown = client.get(f"/api/v1/tips/{tip}/reporter?purpose=回访核实", headers=staff_headers)
    assert shown.status_code == 200
    log = _log(client, mine)
    assert log["total"] == 1
    [entry] = log["items"]
    assert entry["what"] == "reporter_details" and entry["role"] == "grid_staff"
    assert entry["purpose"] == "回访核实" and entry["object_id"] == tip
    assert str(staff_user.id) not in str(log) and staff_user.real_name not in str(log)


def test_someone_elses_tip_reporter_read_is_not_in_my_log(
    client, submit, staff, create_user, token_for
):
    _staff_user, staff_headers = staff
    mine = token_for(create_user())
    theirs = token_for(create_user())
    other_tip = submit(headers=theirs, police_contact_consent=True).json["id"]
    read = client.get(f"/api/v1/tips/{other_tip}/reporter?purpose=回访核实", headers=staff_headers)
    assert read.status_code == 200  # the read happened, and went on the reporter's log
    assert [e["object_id"] for e in _log(client, theirs)["items"]] == [other_tip]
    log = _log(client, mine)
    assert (log["total"], log["items"]) == (0, [])


def test_staff_verifying_me_is_a_profile_access(client, staff, create_user, token_for):
    _staff_user, staff_headers = staff
    me = create_user(home=JIANWAI)
    assert client.post(f"/api/v1/users/{me.id}/verify", headers=staff_headers).status_code == 200
    [entry] = _log(client, token_for(me))["items"]
    assert entry["what"] == "profile" and entry["role"] == "grid_staff"


def test_reads_of_my_track_are_listed_and_my_own_acts_are_not(
    client, session, staff, create_user, token_for
):
    staff_user, _ = staff
    me = create_user()
    patrol_id, other_patrol = uuid.uuid4(), uuid.uuid4()
    audit.record(
        session, "patrol.read", actor=staff_user, object_type="patrol", object_ids=[patrol_id],
        details={"volunteer_id": str(me.id)},
    )  # fmt: skip
    audit.record(
        session, "patrol.read", actor=staff_user, object_type="patrol", object_ids=[other_patrol],
        details={"volunteer_id": str(uuid.uuid4())},
    )  # fmt: skip
    audit.record(session, "user.updated", actor=me, object_type="user", object_ids=[me.id])
    session.commit()
    [entry] = _log(client, token_for(me))["items"]
    assert entry["what"] == "track" and entry["object_id"] == str(patrol_id)


def test_the_access_log_is_paginated_with_a_capped_page_size(client, create_user, token_for):
    mine = token_for(create_user())
    answer = client.get("/api/v1/me/access-log?page_size=101", headers=mine)
    assert answer.status_code == 422
    assert answer.content_type.startswith("application/problem+json")


def test_the_access_log_needs_a_signed_in_caller(client):
    answer = client.get("/api/v1/me/access-log")
    assert answer.status_code == 401
    assert answer.content_type.startswith("application/problem+json")
