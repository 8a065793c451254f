"""Rules of tasks that no test stated before (issue #22): a task reaches only a team and links
only a tip inside its creator's jurisdiction; a completion carries only the volunteer's own
photos; withdrawing an acceptance frees exactly one place; a task whose end is now takes no
more answers."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select, update

from app.tasks import service as tasks_service
from app.tasks.models import Task, TaskRecipient
from tests.tasks.conftest import HOME, now
from tests.tips.conftest import JIANWAI, NEIGHBOUR, jpeg, tip_body, upload

PROBLEM = "application/problem+json"
INSIDE, OUTSIDE = "110105001024", "110105001025"  # the `staff` fixture's community; its neighbour


def _body(**overrides):
    body = {
        "title": "南郎家园东门人员聚集, 请协助疏导",
        "kind": "event_support",
        "location": {"lon": HOME[0], "lat": HOME[1]},
        "radius_m": 500,
        "ends_at": (now() + dt.timedelta(hours=2)).isoformat(),
        "needed": 1,
        "targeting": {"mode": "radius"},
    }
    body.update(overrides)
    return body


def _task_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Task))


def _team(client, token_for, area, code) -> str:
    response = client.post(
        "/api/v1/teams",
        json={
            "name": f"测试组织{code}",
            "kind": "community_organisation",
            "service_type": "mutual_aid",
            "area_id": str(area(code).id),
        },
        headers=token_for("admin"),
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


def _tip(client, at) -> str:
    response = client.post(
        "/api/v1/tips", json=tip_body(at=at), headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


def test_a_task_is_not_sent_to_a_team_outside_the_jurisdiction(
    client, token_for, staff, area, session
):
    outside = _team(client, token_for, area, OUTSIDE)
    inside = _team(client, token_for, area, INSIDE)
    before = _task_count(session)
    for team_id in (outside, str(uuid.uuid4())):
        refused = client.post(
            "/api/v1/tasks",
            json=_body(targeting={"mode": "team", "team_id": team_id}),
            headers=token_for(staff),
        )
        assert refused.status_code == 422 and refused.mimetype == PROBLEM
        assert refused.json["errors"][0]["pointer"] == "/targeting/team_id"
    assert _task_count(session) == before
    accepted = client.post(
        "/api/v1/tasks",
        json=_body(targeting={"mode": "team", "team_id": inside}),
        headers=token_for(staff),
    )
    assert accepted.status_code == 201, accepted.json
    assert _task_count(session) == before + 1


def test_a_task_links_no_tip_outside_the_jurisdiction(client, token_for, staff, session):
    outside, inside = _tip(client, NEIGHBOUR), _tip(client, JIANWAI)
    before = _task_count(session)
    for tip_id in (outside, str(uuid.uuid4())):
        refused = client.post("/api/v1/tasks", json=_body(tip_id=tip_id), headers=token_for(staff))
        assert refused.status_code == 422 and refused.mimetype == PROBLEM
        assert refused.json["errors"][0]["pointer"] == "/tip_id"
    assert _task_count(session) == before
    linked = client.post("/api/v1/tasks", json=_body(tip_id=inside), headers=token_for(staff))
    assert linked.status_code == 201, linked.json
    assert session.get(Task, uuid.UUID(linked.json["id"])).tip_id == uuid.UUID(inside)


def _answer(client, token_for, user, task, **body):
    return client.post(f"/api/v1/tasks/{task['id']}/responses", json=body, headers=token_for(user))


def _recipient(session, task, user) -> TaskRecipient:
    session.expire_all()
    return session.scalar(
        select(TaskRecipient).where(
            TaskRecipient.task_id == uuid.UUID(task["id"]), TaskRecipient.user_id == user.id
        )
    )


def _accepted_with_photos(create_task, volunteer_at, fan_out, client, token_for):
    volunteer, other = volunteer_at(30), volunteer_at(40)
    task = create_task()
    fan_out(task)
    mine = upload(client, jpeg(), headers=token_for(volunteer)).json["id"]
    theirs = upload(client, jpeg(), headers=token_for(other)).json["id"]
    assert _answer(client, token_for, volunteer, task, action="accept").status_code == 200
    return volunteer, task, mine, theirs


def test_a_completion_with_someone_elses_photos_is_422_and_stores_nothing(
    create_task, volunteer_at, fan_out, client, token_for, session
):
    volunteer, task, mine, theirs = _accepted_with_photos(
        create_task, volunteer_at, fan_out, client, token_for
    )
    # An upload sent without a token is no one's: a tip may take it, a completion may not.
    nobodys = upload(client, jpeg()).json["id"]
    cases = (([theirs], 0), ([mine, theirs], 1), ([mine, nobodys], 1), ([str(uuid.uuid4())], 0))
    for media_ids, wrong in cases:
        refused = _answer(
            client, token_for, volunteer, task, action="complete", media_ids=media_ids
        )
        assert refused.status_code == 422 and refused.mimetype == PROBLEM, media_ids
        assert refused.json["errors"][0]["pointer"] == f"/media_ids/{wrong}"
        recipient = _recipient(session, task, volunteer)
        assert (recipient.response, recipient.media_ids, recipient.completed_at) == (
            "accepted",
            [],
            None,
        )
        assert session.get(Task, uuid.UUID(task["id"])).completed == 0


def test_a_completion_with_ones_own_photos_stores_them(
    create_task, volunteer_at, fan_out, client, token_for, session
):
    volunteer, task, mine, _theirs = _accepted_with_photos(
        create_task, volunteer_at, fan_out, client, token_for
    )
    done = _answer(client, token_for, volunteer, task, action="complete", media_ids=[mine])
    assert done.status_code == 200, done.json
    assert _recipient(session, task, volunteer).media_ids == [uuid.UUID(mine)]
    assert session.get(Task, uuid.UUID(task["id"])).completed == 1


def test_a_completion_without_photos_is_stored(
    create_task, volunteer_at, fan_out, client, token_for, session
):
    volunteer = volunteer_at(30)
    task = create_task()
    fan_out(task)
    refused = _answer(client, token_for, volunteer, task, action="complete")
    assert refused.status_code == 409 and refused.mimetype == PROBLEM
    assert session.get(Task, uuid.UUID(task["id"])).completed == 0
    assert _answer(client, token_for, volunteer, task, action="accept").status_code == 200
    done = _answer(client, token_for, volunteer, task, action="complete", note="已疏导")
    assert done.status_code == 200, done.json
    recipient = _recipient(session, task, volunteer)
    assert (recipient.response, recipient.media_ids, recipient.note) == ("completed", [], "已疏导")
    assert session.get(Task, uuid.UUID(task["id"])).completed == 1
    # Completing again counts once.
    assert _answer(client, token_for, volunteer, task, action="complete").status_code == 200
    assert session.get(Task, uuid.UUID(task["id"])).completed == 1


def _accepted(session, task) -> int:
    session.expire_all()
    return session.get(Task, uuid.UUID(task["id"])).accepted


def test_withdrawing_an_acceptance_frees_exactly_one_place(
    create_task, volunteer_at, fan_out, client, token_for, session
):
    volunteers = [volunteer_at(10 * n) for n in range(1, 6)]
    task = create_task(needed=3, targeting={"mode": "radius", "max_recipients": 10})
    fan_out(task)
    for volunteer in volunteers[:3]:
        assert _answer(client, token_for, volunteer, task, action="accept").status_code == 200
    assert _accepted(session, task) == 3
    assert _answer(client, token_for, volunteers[0], task, action="decline").status_code == 200
    assert _accepted(session, task) == 2
    assert _recipient(session, task, volunteers[0]).response == "declined"
    # Declining again, or declining what was never accepted, frees nothing more.
    assert _answer(client, token_for, volunteers[0], task, action="decline").status_code == 200
    assert _answer(client, token_for, volunteers[4], task, action="decline").status_code == 200
    assert _accepted(session, task) == 2
    # Exactly one new acceptance fits.
    assert _answer(client, token_for, volunteers[3], task, action="accept").status_code == 200
    assert _accepted(session, task) == 3
    full = _answer(client, token_for, volunteers[4], task, action="accept")
    assert full.status_code == 409 and full.mimetype == PROBLEM
    assert _accepted(session, task) == 3
    # Accepting twice takes one place.
    assert _answer(client, token_for, volunteers[1], task, action="accept").status_code == 200
    assert _accepted(session, task) == 3


@pytest.mark.parametrize(
    ("before_end", "status"), [(dt.timedelta(0), 409), (dt.timedelta(microseconds=1), 200)]
)
def test_a_task_ending_now_takes_no_answer(
    create_task, volunteer_at, fan_out, client, token_for, session, monkeypatch, before_end, status
):
    volunteer = volunteer_at(30)
    task = create_task()
    fan_out(task)
    ends_at = now().replace(microsecond=500_000) + dt.timedelta(minutes=30)
    session.execute(update(Task).where(Task.id == uuid.UUID(task["id"])).values(ends_at=ends_at))
    session.commit()
    monkeypatch.setattr(tasks_service, "_now", lambda: ends_at - before_end)
    answered = _answer(client, token_for, volunteer, task, action="accept")
    assert answered.status_code == status, answered.json
    assert _accepted(session, task) == (1 if status == 200 else 0)
    assert _recipient(session, task, volunteer).response == ("accepted" if status == 200 else None)
