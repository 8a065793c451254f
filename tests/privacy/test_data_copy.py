"""GET /api/v1/me/data: a copy of my data, every section mine and nobody else's."""

from __future__ import annotations

import json
import uuid

import pytest
from flask import current_app
from sqlalchemy import exists, select

from app.auth.models import User
from app.core.audit import AuditEvent
from app.extensions import db
from app.privacy import export
from app.tasks import service as tasks_service
from app.tasks.models import Task, TaskRecipient
from notifications import service as notifications
from notifications.models import Delivery
from tests.auth.test_sessions import id_number
from tests.conftest import PASSWORD
from tests.patrols.conftest import COMMUNITY
from tests.privacy.people import everything_of_a_volunteer
from tests.tasks.conftest import now

# Sections the set-up fills for each volunteer (duty is one object, not a list).
FILLED = (
    "consent_history",
    "devices",
    "team_memberships",
    "patrols",
    "tips",
    "tasks",
    "service_hours",
    "station_visits",
    "notifications",
    "access_log",
)


@pytest.fixture
def run_jobs(session):
    """What the worker would do with the jobs the set-up defers: fan new tasks out, push."""

    def run():
        unsent = select(Task.id).where(~exists().where(TaskRecipient.task_id == Task.id))
        for task_id in session.scalars(unsent).all():
            settings = tasks_service.TaskSettings.from_config(current_app.config)
            tasks_service.fan_out(session, task_id, 0, now(), settings)
        pending = session.scalars(select(Delivery.id).where(Delivery.status == "pending")).all()
        notifications.send(session, pending)
        session.commit()

    return run


@pytest.fixture
def two_volunteers(app, client, area, create_user, token_for, run_jobs):
    staff = token_for(create_user(roles=["grid_staff"], jurisdiction=[COMMUNITY]))
    liaison = token_for("police_liaison")
    people = []
    for serial in (51, 52):
        body = {
            "phone": f"133{uuid.uuid4().int % 10**8:08d}",
            "password": PASSWORD,
            "real_name": f"复制测试{serial}",
            "id_number": id_number(serial),
            "home_community_id": str(area(COMMUNITY).id),
            "consents": {"terms_version": "2026-11", "location_sharing": True, "id_number": True},
        }
        registered = client.post("/api/v1/auth/register", json=body)
        assert registered.status_code == 201, registered.json
        user = session_user(registered.json["user"]["id"])
        headers = {"Authorization": f"Bearer {registered.json['access_token']}"}
        token = everything_of_a_volunteer(client, app, headers, staff, liaison, run_jobs)
        people.append((user, headers, token))
    return people


def session_user(user_id: str) -> User:
    return db.session.get(User, uuid.UUID(user_id))


def _copy(client, headers):
    answer = client.get("/api/v1/me/data", headers=headers)
    assert answer.status_code == 200, answer.json
    return answer.json


def _ids(value) -> set[str]:
    """Every id in a copy (the ids of its rows and of what they point at)."""
    if isinstance(value, dict):
        found = {v for k, v in value.items() if k.endswith("id") and isinstance(v, str)}
        return found.union(*(_ids(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_ids(v) for v in value))
    return set()


def test_every_section_holds_my_data_and_never_another_volunteers(client, two_volunteers):
    (me, headers, token), (other, other_headers, other_token) = two_volunteers
    copy = _copy(client, headers)
    theirs = _copy(client, other_headers)
    shared = _ids(copy) & _ids(theirs)
    # What both may name: their community, the team both joined, the station both visited;
    # nothing of one person (a row of theirs) is in the other's copy.
    common = {copy["profile"]["home_community_id"]}
    common |= {m["team_id"] for m in copy["team_memberships"]}
    common |= {v["station_id"] for v in copy["station_visits"]}
    assert shared <= common, shared
    assert copy["profile"]["id"] == str(me.id) and copy["profile"]["phone"] == me.phone
    for section in FILLED:
        assert copy[section], f"{section} is empty"
    assert copy["duty"]["on_duty"] and copy["duty"]["position"] is not None
    [patrol] = copy["patrols"]
    assert patrol["track"]["type"] == "LineString" and len(patrol["checkins"]) == 30
    [tip] = copy["tips"]
    assert tip["photos"] and tip["photos"][0]["url"].startswith("/api/v1/media/")
    assert [line["kind"] for line in tip["history"]][:1] == ["submitted"]
    assert {line["to_status"] for line in tip["history"]} >= {"triaged"}
    [task] = copy["tasks"]
    assert task["response"] == "complete" or task["completed_at"] is not None
    assert {entry["what"] for entry in copy["access_log"]} == {"reporter_details"}
    # Devices are shown masked: the token itself is nowhere in the copy.
    assert copy["devices"][0]["token_masked"] == export.mask_token(token)
    text = json.dumps(copy, ensure_ascii=False)
    assert token not in text
    for foreign in (str(other.id), other.phone, other.real_name, other_token):
        assert foreign not in text
    assert copy["truncated"] == []


def test_asking_for_a_copy_is_audited(client, session, create_user, token_for):
    me = create_user()
    _copy(client, token_for(me))
    [event] = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "account.data_copied", AuditEvent.actor_id == me.id
        )
    ).all()
    assert event.object_ids == [str(me.id)]


def test_a_section_past_its_cap_is_cut_and_named(client, session, create_user, token_for):
    from notifications.models import Notification

    me = create_user()
    for _ in range(export.SECTION_LIMIT + 1):
        session.add(
            Notification(
                user_id=me.id, kind="tip_status", subject_type="tip", subject_id=uuid.uuid4()
            )
        )
    session.commit()
    copy = _copy(client, token_for(me))
    assert len(copy["notifications"]) == export.SECTION_LIMIT
    assert copy["truncated"] == ["notifications"]


def test_a_copy_needs_a_signed_in_caller(client):
    answer = client.get("/api/v1/me/data")
    assert answer.status_code == 401 and answer.mimetype == "application/problem+json"
