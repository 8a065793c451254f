"""Answering tasks: only recipients, capacity, arrival radius, completion hours, cancellation."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update

from app.tasks.models import Task, TaskRecipient
from notifications.models import Notification
from tests.tasks.conftest import HOME, east, now


def answer(client, token_for, user, task, **body):
    return client.post(f"/api/v1/tasks/{task['id']}/responses", json=body, headers=token_for(user))


def _mine(session, task, user):
    session.expire_all()
    return session.scalar(
        select(TaskRecipient).where(
            TaskRecipient.task_id == uuid.UUID(task["id"]), TaskRecipient.user_id == user.id
        )
    )


def test_a_volunteer_cannot_respond_to_a_task_not_sent_to_them(
    create_task, volunteer_at, fan_out, client, token_for, session
):
    volunteer_at(50)
    outsider = volunteer_at(5_000)
    task = create_task()
    fan_out(task)
    response = answer(client, token_for, outsider, task, action="accept")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    # The answer took no place and did not make the outsider a recipient.
    assert _mine(session, task, outsider) is None
    assert session.get(Task, uuid.UUID(task["id"])).accepted == 0


def test_places_are_limited(create_task, volunteer_at, fan_out, client, token_for, session):
    volunteers = [volunteer_at(20 * n) for n in range(1, 5)]
    task = create_task(needed=2, targeting={"mode": "radius", "max_recipients": 10})
    fan_out(task)
    codes = [answer(client, token_for, v, task, action="accept").status_code for v in volunteers]
    assert codes == [200, 200, 409, 409]
    assert session.get(Task, uuid.UUID(task["id"])).accepted == 2
    # Declining frees one place, and only one: a single new acceptance fits.
    assert answer(client, token_for, volunteers[0], task, action="decline").status_code == 200
    session.expire_all()
    assert session.get(Task, uuid.UUID(task["id"])).accepted == 1
    assert answer(client, token_for, volunteers[2], task, action="accept").status_code == 200
    assert answer(client, token_for, volunteers[3], task, action="accept").status_code == 409
    session.expire_all()
    assert session.get(Task, uuid.UUID(task["id"])).accepted == 2


def test_arriving_needs_a_position_inside_the_radius(
    create_task, volunteer_at, fan_out, client, token_for, session
):
    volunteer = volunteer_at(50)
    task = create_task(radius_m=100)
    fan_out(task)
    here = {"lon": HOME[0], "lat": HOME[1]}
    unaccepted = answer(client, token_for, volunteer, task, action="arrive", location=here)
    assert unaccepted.status_code == 409
    mine = _mine(session, task, volunteer)
    assert (mine.response, mine.arrived_at) == (None, None)
    answer(client, token_for, volunteer, task, action="accept")
    far = answer(
        client,
        token_for,
        volunteer,
        task,
        action="arrive",
        location={"lon": east(300), "lat": HOME[1]},
    )
    assert far.status_code == 422 and far.json["errors"][0]["pointer"] == "/location"
    nowhere = answer(client, token_for, volunteer, task, action="arrive")
    assert nowhere.status_code == 422 and nowhere.json["errors"][0]["pointer"] == "/location"
    mine = _mine(session, task, volunteer)
    assert (mine.response, mine.arrived_at) == ("accepted", None)
    near = answer(
        client,
        token_for,
        volunteer,
        task,
        action="arrive",
        location={"lon": east(40), "lat": HOME[1]},
    )
    assert near.status_code == 200 and near.json["arrived_at"] is not None


def test_completing_adds_service_hours(
    create_task, volunteer_at, fan_out, client, token_for, session
):
    volunteer = volunteer_at(50)
    task = create_task(kind="patrol")
    fan_out(task)
    answer(client, token_for, volunteer, task, action="accept")
    answer(
        client,
        token_for,
        volunteer,
        task,
        action="arrive",
        location={"lon": HOME[0], "lat": HOME[1]},
    )
    session.execute(
        update(TaskRecipient)
        .where(TaskRecipient.user_id == volunteer.id)
        .values(arrived_at=now() - dt.timedelta(minutes=90))
    )
    session.execute(
        update(Task)
        .where(Task.id == uuid.UUID(task["id"]))
        .values(starts_at=now() - dt.timedelta(hours=3))
    )
    done = answer(client, token_for, volunteer, task, action="complete", note="已疏导")
    assert done.status_code == 200
    record = client.get("/api/v1/me/service-record", headers=token_for(volunteer)).json
    assert record["by_kind"] == {"task:patrol": 1.5}


def test_cancelling_tells_those_who_accepted_and_closes_the_task(
    create_task, volunteer_at, fan_out, client, token_for, staff, session
):
    accepted, ignored = volunteer_at(30), volunteer_at(40)
    task = create_task()
    fan_out(task)
    answer(client, token_for, accepted, task, action="accept")
    etag = client.get(f"/api/v1/tasks/{task['id']}", headers=token_for(staff)).headers["ETag"]
    url = f"/api/v1/tasks/{task['id']}/cancel"
    assert client.post(url, json={}, headers=token_for(staff)).status_code == 428
    stale = {**token_for(staff), "If-Match": '"stale"'}
    assert client.post(url, json={}, headers=stale).status_code == 412
    cancelled = client.post(
        f"/api/v1/tasks/{task['id']}/cancel",
        json={"reason": "现场已处置"},
        headers={**token_for(staff), "If-Match": etag},
    )
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    told = session.scalars(
        select(Notification.user_id).where(Notification.kind == "task_cancelled")
    ).all()
    assert told == [accepted.id]
    assert answer(client, token_for, ignored, task, action="accept").status_code == 409


def test_a_finished_task_answers_409(
    create_task, volunteer_at, fan_out, client, token_for, session
):
    volunteer = volunteer_at(30)
    task = create_task()
    fan_out(task)
    session.execute(
        update(Task)
        .where(Task.id == uuid.UUID(task["id"]))
        .values(starts_at=now() - dt.timedelta(hours=3), ends_at=now() - dt.timedelta(minutes=1))
    )
    over = answer(client, token_for, volunteer, task, action="accept")
    assert over.status_code == 409 and over.mimetype == "application/problem+json"
    session.expire_all()
    assert session.get(Task, uuid.UUID(task["id"])).accepted == 0
    recipient = session.scalar(
        select(TaskRecipient).where(
            TaskRecipient.task_id == uuid.UUID(task["id"]), TaskRecipient.user_id == volunteer.id
        )
    )
    assert (recipient.response, recipient.accepted_at, recipient.responded_at) == (None, None, None)


def test_the_feed_lists_tasks_sent_to_me(create_task, volunteer_at, fan_out, client, token_for):
    volunteer = volunteer_at(30)
    task = create_task()
    fan_out(task)
    feed = client.get("/api/v1/me/tasks?active=true", headers=token_for(volunteer)).json
    assert [t["id"] for t in feed["items"]] == [task["id"]]
    assert feed["items"][0]["mine"]["response"] is None


def test_staff_see_responses_and_delivery_statistics(
    create_task, volunteer_at, fan_out, client, token_for, staff, create_user
):
    first, second = volunteer_at(30), volunteer_at(40)
    task = create_task()
    fan_out(task)
    answer(client, token_for, first, task, action="accept")
    answer(client, token_for, second, task, action="decline")
    detail = client.get(f"/api/v1/tasks/{task['id']}", headers=token_for(staff)).json
    stats = detail["statistics"]
    assert stats["recipients"] == 2
    assert stats["responses"] == {"accepted": 1, "declined": 1}
    assert stats["deliveries"] == {"logged": 2}  # the logging sender without FCM credentials
    assert stats["sms"] == {}  # no urgent kind: no SMS fallback
    assert [v["user_id"] for v in stats["volunteers"]] == [str(first.id)]
    elsewhere = create_user(roles=["grid_staff"], jurisdiction=["110105002000"])
    assert (
        client.get(f"/api/v1/tasks/{task['id']}", headers=token_for(elsewhere)).status_code == 404
    )


def test_counts_that_would_locate_volunteers_are_withheld_until_someone_answers(
    app, create_task, volunteer_at, fan_out, client, token_for, staff
):
    """Issue 14.3: a radius task that reached fewer than TASK_MIN_COUNT_SHOWN phones shows no
    count (recipients, answers, deliveries) until a volunteer answers."""
    threshold = app.config["TASK_MIN_COUNT_SHOWN"]
    few = [volunteer_at(10 + n) for n in range(threshold - 1)]
    task = create_task(needed=3, radius_m=60)
    assert fan_out(task) == threshold - 1
    stats = client.get(f"/api/v1/tasks/{task['id']}", headers=token_for(staff)).json["statistics"]
    assert stats == {
        "recipients": None,
        "recipients_below": threshold,
        "responses": {},
        "deliveries": {},
        "sms": {},  # an SMS count would locate them as well
        "volunteers": [],
    }
    answer(client, token_for, few[0], task, action="decline")
    stats = client.get(f"/api/v1/tasks/{task['id']}", headers=token_for(staff)).json["statistics"]
    assert stats["recipients"] == threshold - 1 and stats["recipients_below"] is None
    assert stats["responses"] == {"declined": 1, "no_answer": threshold - 2}


def test_counts_at_the_threshold_are_shown(
    app, create_task, volunteer_at, fan_out, client, token_for, staff
):
    threshold = app.config["TASK_MIN_COUNT_SHOWN"]
    for n in range(threshold):
        volunteer_at(10 + n)
    task = create_task(needed=3, radius_m=60)
    fan_out(task)
    stats = client.get(f"/api/v1/tasks/{task['id']}", headers=token_for(staff)).json["statistics"]
    assert stats["recipients"] == threshold
    assert stats["responses"] == {"no_answer": threshold}


def test_bad_responses_are_422(create_task, volunteer_at, fan_out, client, token_for, session):
    volunteer = volunteer_at(30)
    task = create_task()
    fan_out(task)
    for body in ({"action": "dance"}, {"action": "accept", "extra": 1}, {}):
        response = answer(client, token_for, volunteer, task, **body)
        assert response.status_code == 422, body
        assert response.mimetype == "application/problem+json"
    # None of them was taken as an answer.
    session.expire_all()
    assert session.get(Task, uuid.UUID(task["id"])).accepted == 0
    responses = session.scalars(
        select(TaskRecipient.response).where(TaskRecipient.task_id == uuid.UUID(task["id"]))
    ).all()
    assert set(responses) == {None}


def test_a_dispatcher_reads_the_task_lifecycle(
    create_task, volunteer_at, fan_out, client, token_for, staff, session
):
    """Issue 15: a task stayed `open` until cancelled. Now it is filled when enough accepted,
    completed when that many completed, expired when `ends_at` passed first; lists filter by
    it, and `active` keeps only what a volunteer may still act on (open or filled)."""
    first, second = volunteer_at(30), volunteer_at(40)
    task = create_task(needed=2, targeting={"mode": "radius", "max_recipients": 10})
    lapsed = create_task(needed=1, title="已过期的任务")
    fan_out(task)

    def status_of(which) -> tuple[str, int, int]:
        read = client.get(f"/api/v1/tasks/{which['id']}", headers=token_for(staff)).json
        return read["status"], read["accepted"], read["completed"]

    def listed(**query) -> set[str]:
        page = client.get("/api/v1/tasks", query_string=query, headers=token_for(staff))
        assert page.status_code == 200, page.json
        return {t["id"] for t in page.json["items"]}

    assert status_of(task) == ("open", 0, 0)
    answer(client, token_for, first, task, action="accept")
    assert status_of(task) == ("open", 1, 0)
    answer(client, token_for, second, task, action="accept")
    assert status_of(task) == ("filled", 2, 0)
    assert task["id"] in listed(status="filled") and task["id"] in listed(active="true")
    assert answer(client, token_for, first, task, action="complete").status_code == 200
    # Completing twice counts once.
    assert answer(client, token_for, first, task, action="complete").status_code == 200
    assert status_of(task) == ("filled", 2, 1)
    assert answer(client, token_for, second, task, action="complete").status_code == 200
    assert status_of(task) == ("completed", 2, 2)
    assert listed(status="completed") >= {task["id"]}
    assert task["id"] not in listed(active="true") | listed(status="open")

    session.execute(
        update(Task)
        .where(Task.id == uuid.UUID(lapsed["id"]))
        .values(starts_at=now() - dt.timedelta(hours=3), ends_at=now() - dt.timedelta(hours=1))
    )
    session.flush()
    assert status_of(lapsed)[0] == "expired"
    assert lapsed["id"] in listed(status="expired")
    assert lapsed["id"] not in listed(active="true")
    mine = client.get("/api/v1/me/tasks?active=true", headers=token_for(first)).json
    assert task["id"] not in {t["id"] for t in mine["items"]}

    wrong = client.get("/api/v1/tasks?status=done", headers=token_for(staff))
    assert wrong.status_code == 422 and wrong.mimetype == "application/problem+json"


def test_completion_photos_are_kept_with_the_task_and_shown_to_its_staff(
    create_task, volunteer_at, fan_out, client, token_for, staff, session, create_user, app
):
    """A volunteer's completion photos stayed unattached uploads: the job that deletes those
    deleted them a day later, and no one but the volunteer could ever see them. Now they are
    the task's: they stop expiring, staff of the task's area see them (audited), and a photo
    cannot be reused or borrowed from someone else."""
    from app.media import service as media_service
    from app.media.models import Media
    from tests.tips.conftest import jpeg, upload

    volunteer, other = volunteer_at(30), volunteer_at(40)
    task = create_task(needed=2)
    fan_out(task)
    for who in (volunteer, other):
        answer(client, token_for, who, task, action="accept")
    mine = upload(client, jpeg(), headers=token_for(volunteer)).json["id"]
    theirs = upload(client, jpeg(), headers=token_for(other)).json["id"]

    borrowed = answer(client, token_for, volunteer, task, action="complete", media_ids=[theirs])
    assert borrowed.status_code == 422 and borrowed.mimetype == "application/problem+json"
    assert borrowed.json["errors"][0]["pointer"] == "/media_ids/0"
    done = answer(client, token_for, volunteer, task, action="complete", media_ids=[mine])
    assert done.status_code == 200, done.json
    # Completing again with the same photo is the same completion, not a reuse.
    again = answer(client, token_for, volunteer, task, action="complete", media_ids=[mine])
    assert again.status_code == 200, again.json

    session.expire_all()
    photo = session.get(Media, uuid.UUID(mine))
    assert (str(photo.task_id), photo.expires_at) == (task["id"], None)
    assert session.get(Media, uuid.UUID(theirs)).task_id is None
    with app.app_context():
        media_service.delete_expired(session, now() + dt.timedelta(days=30))
    session.expire_all()
    assert session.get(Media, uuid.UUID(mine)) is not None  # kept: the task's evidence

    detail = client.get(f"/api/v1/tasks/{task['id']}", headers=token_for(staff)).json
    engaged = {v["user_id"]: v for v in detail["statistics"]["volunteers"]}
    assert engaged[str(volunteer.id)]["media_ids"] == [mine]
    assert client.get(f"/api/v1/media/{mine}", headers=token_for(staff)).status_code == 200
    outsider = create_user(roles=["grid_staff"], jurisdiction=["110105002024"])
    assert client.get(f"/api/v1/media/{mine}", headers=token_for(outsider)).status_code == 404
    assert client.get(f"/api/v1/media/{mine}", headers=token_for(other)).status_code == 404
    reused = create_task(needed=1, title="另一个任务")
    fan_out(reused)
    answer(client, token_for, volunteer, reused, action="accept")
    twice = answer(client, token_for, volunteer, reused, action="complete", media_ids=[mine])
    assert twice.status_code == 422
