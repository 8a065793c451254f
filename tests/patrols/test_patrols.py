"""Starting, ending, finding and summarising patrols; the idle job."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select

from app.core.audit import AuditEvent
from app.patrols import service
from app.patrols.models import Patrol
from app.teams.models import Team, TeamMember
from tests.patrols.conftest import COMMUNITY, HOME, east, item, now


def test_a_volunteer_walks_one_patrol_at_a_time(volunteer, start_patrol, client, token_for):
    first = start_patrol(volunteer)
    response = client.post(
        "/api/v1/patrols", json={"kind": "walk_along"}, headers=token_for(volunteer)
    )
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.json["active_patrol_id"] == first["id"]


def test_a_phone_chosen_id_makes_a_replayed_start_return_the_same_patrol(
    volunteer, client, token_for, create_user, session
):
    patrol_id = str(uuid.uuid4())
    body = {
        "id": patrol_id,
        "kind": "walk_along",
        "started_at": (now() - dt.timedelta(hours=2)).isoformat(),
    }
    first = client.post("/api/v1/patrols", json=body, headers=token_for(volunteer))
    again = client.post("/api/v1/patrols", json=body, headers=token_for(volunteer))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json["id"] == again.json["id"] == patrol_id
    assert session.scalar(
        select(Patrol).where(Patrol.volunteer_id == volunteer.id)
    ).id == uuid.UUID(patrol_id)
    stranger = create_user(roles=["volunteer"])
    assert client.post("/api/v1/patrols", json=body, headers=token_for(stranger)).status_code == 409


def test_start_times_in_the_future_are_refused(volunteer, client, token_for, session):
    body = {"kind": "walk_along", "started_at": (now() + dt.timedelta(hours=1)).isoformat()}
    response = client.post("/api/v1/patrols", json=body, headers=token_for(volunteer))
    assert response.status_code == 422
    assert response.json["errors"][0]["pointer"] == "/started_at"
    assert session.scalar(select(Patrol).where(Patrol.volunteer_id == volunteer.id)) is None


def test_unknown_fields_and_kinds_are_a_422(volunteer, client, token_for):
    for body in ({"kind": "stroll"}, {"kind": "walk_along", "volunteer_id": str(uuid.uuid4())}):
        response = client.post("/api/v1/patrols", json=body, headers=token_for(volunteer))
        assert response.status_code == 422, body


def test_a_team_patrol_needs_a_team_the_volunteer_belongs_to(
    volunteer, client, token_for, session, area
):
    team = Team(
        id=uuid.uuid4(),
        name="南郎家园巡逻队",
        kind="patrol_team",
        area_id=area(COMMUNITY).id,
        **{k: v for k, v in area(COMMUNITY).path_ids.items() if k != "grid_cell_id"},
    )
    session.add(team)
    session.commit()
    body = {"kind": "team_patrol", "team_id": str(team.id)}
    assert (
        client.post("/api/v1/patrols", json=body, headers=token_for(volunteer)).status_code == 422
    )
    assert (
        client.post(
            "/api/v1/patrols", json={"kind": "team_patrol"}, headers=token_for(volunteer)
        ).status_code
        == 422
    )
    session.add(TeamMember(id=uuid.uuid4(), team_id=team.id, user_id=volunteer.id, role="member"))
    session.commit()
    response = client.post("/api/v1/patrols", json=body, headers=token_for(volunteer))
    assert response.status_code == 201
    assert response.json["team_id"] == str(team.id)


def test_ending_summarises_track_distance_and_service_time(
    volunteer, start_patrol, send, client, token_for
):
    patrol = start_patrol(volunteer)
    t0 = now() - dt.timedelta(minutes=50)
    # Four fixes 100 m apart, 4 minutes apart; then a 30-minute silence (counts 10 minutes).
    fixes = [
        item(t0 + dt.timedelta(minutes=4 * n), lon=east(100 * n), lat=HOME[1] + 0.0004 * (n % 2))
        for n in range(4)
    ]
    fixes.append(item(t0 + dt.timedelta(minutes=42), lon=east(300)))
    send(volunteer, patrol["id"], fixes[:2])
    # Under way, the patrol reports its distance and time so far, not 0 until it ends.
    path = f"/api/v1/patrols/{patrol['id']}"
    live = client.get(path, headers=token_for(volunteer)).json
    assert live["status"] == "active"
    assert live["service_hours"] == round(4 * 60 / 3600, 2)
    assert 90 < live["distance_m"] < 120
    send(volunteer, patrol["id"], fixes[2:])
    live = client.get(path, headers=token_for(volunteer)).json
    response = client.post(f"{path}/end", json={}, headers=token_for(volunteer))
    assert response.status_code == 200
    ended = response.json
    assert ended["status"] == "ended" and ended["end_reason"] == "ended"
    assert ended["service_hours"] == round((3 * 4 + 10) * 60 / 3600, 2)
    assert 300 < ended["distance_m"] < 420
    # What it showed under way is what ending it stored.
    assert (live["service_hours"], live["distance_m"]) == (
        ended["service_hours"],
        ended["distance_m"],
    )
    again = client.post(
        f"/api/v1/patrols/{patrol['id']}/end", json={}, headers=token_for(volunteer)
    )
    assert again.json["ended_at"] == ended["ended_at"]


def test_the_track_is_a_simplified_linestring_in_the_asked_coordinate_system(
    volunteer, start_patrol, send, client, token_for
):
    patrol = start_patrol(volunteer)
    t0 = now() - dt.timedelta(minutes=30)
    # A straight walk: the middle fixes add nothing and are simplified away.
    send(
        volunteer,
        patrol["id"],
        [item(t0 + dt.timedelta(seconds=30 * n), lon=east(20 * n)) for n in range(10)],
    )
    detail = client.get(f"/api/v1/patrols/{patrol['id']}", headers=token_for(volunteer)).json
    assert detail["track"]["type"] == "LineString"
    assert len(detail["track"]["coordinates"]) == 2
    gcj = client.get(f"/api/v1/patrols/{patrol['id']}?crs=gcj02", headers=token_for(volunteer)).json
    assert gcj["track"]["coordinates"][0] != detail["track"]["coordinates"][0]


def test_staff_see_patrols_of_their_jurisdiction_and_the_read_is_audited(
    volunteer, start_patrol, send, client, token_for, create_user, session
):
    patrol = start_patrol(volunteer)
    send(volunteer, patrol["id"], [item()])
    staff = create_user(roles=["grid_staff"], jurisdiction=[COMMUNITY])
    elsewhere = create_user(roles=["grid_staff"], jurisdiction=["110105002000"])
    listed = client.get("/api/v1/patrols", headers=token_for(staff)).json
    assert [p["id"] for p in listed["items"]] == [patrol["id"]]
    assert client.get("/api/v1/patrols", headers=token_for(elsewhere)).json["items"] == []
    assert (
        client.get(f"/api/v1/patrols/{patrol['id']}", headers=token_for(elsewhere)).status_code
        == 404
    )
    assert (
        client.get(f"/api/v1/patrols/{patrol['id']}", headers=token_for(staff)).status_code == 200
    )
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "patrol.read"))
    assert event.actor_id == staff.id and event.object_ids == [patrol["id"]]


def test_volunteers_see_only_their_own_patrols(
    volunteer, start_patrol, client, token_for, create_user
):
    patrol = start_patrol(volunteer)
    other = create_user(roles=["volunteer"], home=COMMUNITY)
    assert client.get("/api/v1/patrols", headers=token_for(other)).json["items"] == []
    assert (
        client.get(f"/api/v1/patrols/{patrol['id']}", headers=token_for(other)).status_code == 404
    )
    mine = client.get("/api/v1/patrols?status=active", headers=token_for(volunteer)).json
    assert mine["total"] == 1 and mine["items"][0]["id"] == patrol["id"]


def test_the_idle_job_ends_forgotten_patrols_at_their_last_fix(
    app, volunteer, start_patrol, send, session
):
    patrol = start_patrol(volunteer, started_at=(now() - dt.timedelta(hours=20)).isoformat())
    last = now() - dt.timedelta(hours=19)
    send(volunteer, patrol["id"], [item(last - dt.timedelta(minutes=5)), item(last, lon=east(50))])
    settings = service.PatrolSettings.from_config(app.config)
    assert service.end_idle(session, now(), app.config["PATROL_IDLE_HOURS"], settings) == 1
    ended = session.get(Patrol, uuid.UUID(patrol["id"]))
    assert (ended.status, ended.end_reason) == ("ended", "idle")
    assert abs((ended.ended_at - last).total_seconds()) < 1
    assert ended.credited_seconds == 300
