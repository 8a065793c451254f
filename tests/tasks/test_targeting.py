"""Creating tasks, choosing recipients, widening; the fan-out is deferred transactionally."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select, text

from app.tasks import service as tasks_service
from app.tasks.models import Task, TaskRecipient
from tests.tasks.conftest import SUBDISTRICT, now


def jobs_named(connection, name):
    return connection.execute(
        text("SELECT count(*) FROM procrastinate_jobs WHERE task_name LIKE :n"), {"n": f"%{name}"}
    ).scalar_one()


def recipients(session, task):
    return set(
        session.scalars(
            select(TaskRecipient.user_id).where(TaskRecipient.task_id == uuid.UUID(task["id"]))
        )
    )


def test_creating_a_task_defers_its_fan_out_in_the_same_transaction(create_task, connection):
    assert jobs_named(connection, "fan_out_task") == 0
    create_task()
    assert jobs_named(connection, "fan_out_task") == 1


def test_a_rolled_back_task_creation_leaves_no_fan_out(session, staff, connection):
    nested = session.begin_nested()
    tasks_service.create(
        session,
        staff,
        {
            "title": "t",
            "kind": "patrol",
            "location": {"lon": 116.457, "lat": 39.91, "coord_system": "wgs84"},
            "ends_at": now() + dt.timedelta(hours=1),
            "needed": 1,
            "targeting": {"mode": "radius"},
        },
    )
    nested.rollback()
    assert jobs_named(connection, "fan_out_task") == 0
    assert session.scalar(select(func.count()).select_from(Task)) == 0


def test_radius_targets_only_on_duty_consenting_volunteers_inside_it_nearest_first(
    create_task, volunteer_at, fan_out, session, dispatcher
):
    near = volunteer_at(50)
    far_inside = volunteer_at(400)
    outside = volunteer_at(900)
    no_consent = volunteer_at(60, consent=False)
    off_duty = volunteer_at(70, on_duty=False)
    task = create_task(dispatcher, needed=1, targeting={"mode": "radius", "max_recipients": 10})
    assert fan_out(task) == 2
    rows = session.execute(
        select(TaskRecipient.user_id, TaskRecipient.distance_m)
        .where(TaskRecipient.task_id == uuid.UUID(task["id"]))
        .order_by(TaskRecipient.distance_m)
    ).all()
    assert [r.user_id for r in rows] == [near.id, far_inside.id]
    assert {outside.id, no_consent.id, off_duty.id}.isdisjoint({r.user_id for r in rows})


def test_the_closest_few_come_first(create_task, volunteer_at, fan_out, session, dispatcher):
    volunteers = [volunteer_at(50 * n) for n in range(1, 7)]
    task = create_task(dispatcher, needed=1, targeting={"mode": "radius", "max_recipients": 2})
    fan_out(task)
    assert recipients(session, task) == {volunteers[0].id, volunteers[1].id}


def test_stale_positions_are_not_targeted(app, create_task, volunteer_at, fan_out, session):
    stale = volunteer_at(50)
    session.execute(
        text(
            "UPDATE duty_status SET position_at = now() - make_interval(mins => :m) "
            "WHERE user_id = :u"
        ),
        {"m": app.config["DUTY_POSITION_MINUTES"] + 1, "u": stale.id},
    )
    task = create_task()
    assert fan_out(task) == 0


def test_required_skills_filter_recipients(create_task, volunteer_at, fan_out, session):
    medic = volunteer_at(50, skills=("first_aid",))
    volunteer_at(60)
    task = create_task(skills=["first_aid"])
    fan_out(task)
    assert recipients(session, task) == {medic.id}


def test_too_few_acceptances_widen_the_radius_in_phases(
    create_task, volunteer_at, fan_out, session, connection, dispatcher
):
    close = volunteer_at(100)
    farther = volunteer_at(800)
    task = create_task(
        dispatcher, needed=2, radius_m=500, targeting={"mode": "radius", "widen_after_s": 60}
    )
    fan_out(task)
    assert recipients(session, task) == {close.id}
    assert jobs_named(connection, "fan_out_task") == 2  # the next phase is scheduled
    fan_out(task, phase=1)
    assert recipients(session, task) == {close.id, farther.id}
    assert session.get(Task, uuid.UUID(task["id"])).phase == 1


def test_a_full_task_does_not_widen(
    create_task, volunteer_at, fan_out, session, client, token_for, dispatcher
):
    close = volunteer_at(100)
    volunteer_at(800)
    task = create_task(dispatcher, needed=1, radius_m=500)
    fan_out(task)
    accepted = client.post(
        f"/api/v1/tasks/{task['id']}/responses", json={"action": "accept"}, headers=token_for(close)
    )
    assert accepted.status_code == 200
    assert fan_out(task, phase=1) == 0
    assert recipients(session, task) == {close.id}


def test_radius_and_widening_stay_inside_the_creators_jurisdiction(
    create_task, volunteer_at, fan_out, session, create_user
):
    """Issue 14.3: a radius over the border asks nobody beyond it, in every phase."""
    inside = volunteer_at(30)  # 南郎家园
    same_subdistrict = volunteer_at(600)  # 北郎家园, also in 建外
    other_subdistrict = volunteer_at(1400)  # 八里庄, another sub-district
    widening = {"mode": "radius", "widen_after_s": 60, "max_radius_m": 2000}
    of_community = create_task(needed=5, radius_m=500, targeting=widening)
    of_subdistrict = create_task(
        create_user(roles=["grid_staff"], jurisdiction=[SUBDISTRICT]),
        needed=5,
        radius_m=500,
        targeting=widening,
    )
    for phase in (0, 1, 2):
        fan_out(of_community, phase=phase)
        fan_out(of_subdistrict, phase=phase)
    assert recipients(session, of_community) == {inside.id}
    assert recipients(session, of_subdistrict) == {inside.id, same_subdistrict.id}
    assert other_subdistrict.id not in recipients(session, of_subdistrict)


def test_a_creator_who_lost_the_area_reaches_nobody_new(
    create_task, volunteer_at, fan_out, session, staff
):
    first = volunteer_at(30)
    task = create_task(needed=3, radius_m=50, targeting={"mode": "radius", "widen_after_s": 60})
    fan_out(task)
    later = volunteer_at(60)
    staff.jurisdiction = []
    session.commit()
    fan_out(task, phase=1)
    assert recipients(session, task) == {first.id}
    assert later.id not in recipients(session, task)


def test_area_team_and_named_targeting(
    create_task, volunteer_at, create_user, fan_out, session, area
):
    first, second = volunteer_at(on_duty=False), volunteer_at(on_duty=False)
    elsewhere = create_user(roles=["volunteer"], home="110105002024")
    by_area = create_task(
        location=None, area_id=str(area("110105001024").id), targeting={"mode": "area"}
    )
    fan_out(by_area)
    chosen = recipients(session, by_area)
    assert {first.id, second.id} <= chosen and elsewhere.id not in chosen
    named = create_task(targeting={"mode": "named", "volunteer_ids": [str(second.id)]})
    fan_out(named)
    assert recipients(session, named) == {second.id}


def test_staff_cannot_task_outside_their_jurisdiction(
    create_task, client, token_for, staff, create_user, session, connection
):
    body = {
        "title": "望京",
        "kind": "patrol",
        "location": {"lon": 116.47, "lat": 40.0},
        "ends_at": (now() + dt.timedelta(hours=1)).isoformat(),
        "needed": 1,
        "targeting": {"mode": "radius"},
    }
    tasks_before = session.scalar(select(func.count()).select_from(Task))
    response = client.post("/api/v1/tasks", json=body, headers=token_for(staff))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"][0]["pointer"] == "/location"
    stranger = create_user(roles=["volunteer"], home="110105002024")
    named = {
        **body,
        "location": {"lon": 116.457, "lat": 39.91},
        "targeting": {"mode": "named", "volunteer_ids": [str(stranger.id)]},
    }
    refused = client.post("/api/v1/tasks", json=named, headers=token_for(staff))
    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"
    # Nothing was made, and nothing deferred for it.
    assert session.scalar(select(func.count()).select_from(Task)) == tasks_before
    assert jobs_named(connection, "fan_out_task") == 0


def test_bad_task_bodies_are_422_and_store_nothing(client, token_for, staff, session):
    base = {
        "title": "t",
        "kind": "patrol",
        "location": {"lon": 116.457, "lat": 39.91},
        "ends_at": (now() + dt.timedelta(hours=1)).isoformat(),
        "needed": 1,
        "targeting": {"mode": "radius"},
    }
    for change in (
        {"kind": "party"},
        {"needed": 0},
        {"targeting": {"mode": "team"}},
        {"ends_at": (now() - dt.timedelta(hours=1)).isoformat()},
        {"location": None},
        {"created_by": str(uuid.uuid4())},
    ):
        response = client.post("/api/v1/tasks", json={**base, **change}, headers=token_for(staff))
        assert response.status_code == 422, change
        assert response.mimetype == "application/problem+json"
    assert session.scalar(select(func.count()).select_from(Task)) == 0


def test_volunteers_cannot_create_tasks(client, token_for, volunteer_at):
    assert (
        client.post("/api/v1/tasks", json={}, headers=token_for(volunteer_at())).status_code == 403
    )


def test_poison_task_times_are_refused_and_tasks_and_fan_out_keep_working(
    client, token_for, staff, create_task, fan_out, volunteer_at, connection, ledger
):
    """Issue 14: a task ending 9999-12-31T23:59:59-14:00 (the year 10000 in UTC) was stored, and
    GET /tasks and its fan-out job failed for good. Times outside a task's range (ending at
    most 92 days ahead) are refused, nothing is stored or deferred; tasks within it work."""
    base = {
        "title": "南郎家园东门人员聚集",
        "kind": "event_support",
        "location": {"lon": 116.457036, "lat": 39.910039},
        "radius_m": 500,
        "ends_at": (now() + dt.timedelta(hours=2)).isoformat(),
        "needed": 1,
        "targeting": {"mode": "radius"},
    }
    naive = (now() + dt.timedelta(hours=2)).replace(tzinfo=None).isoformat()
    headers = token_for(staff)
    ledger.mark()
    for field, poison in (
        ("ends_at", "9999-12-31T23:59:59-14:00"),
        ("ends_at", "0001-01-01T00:00:00+14:00"),
        ("ends_at", (now() + dt.timedelta(days=93)).isoformat()),
        ("ends_at", naive),
        ("starts_at", "0001-01-01T00:00:00+14:00"),
        ("starts_at", "9999-12-31T23:59:59-14:00"),
        ("starts_at", (now() - dt.timedelta(days=2)).isoformat()),
    ):
        response = client.post("/api/v1/tasks", json={**base, field: poison}, headers=headers)
        assert response.status_code == 422, (field, poison, response.json)
        assert [e["pointer"] for e in response.json["errors"]] == [f"/{field}"]
    assert ledger.changes() == []  # no task, no fan-out job

    volunteer_at(30)
    longest = create_task(ends_at=(now() + dt.timedelta(days=91)).isoformat())
    listed = client.get("/api/v1/tasks", headers=headers)
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json["items"]] == [longest["id"]]
    assert jobs_named(connection, "fan_out_task") == 1
    assert fan_out(longest) == 1
