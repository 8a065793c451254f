"""Dispatch in the console, through the Flask client: the reach is a count without names
(withheld below the minimum around a point), a task is sent with the API's rules (jurisdiction,
validation, once per form), bad input is a message and nothing is made, and a task's live view
is for staff of its areas only."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from flask import current_app
from geoalchemy2.shape import to_shape

from app.tasks import service as tasks_service
from app.tasks.models import Task
from geo.crs import from_wgs84
from tests.console.conftest import csrf_of, sign_in
from tests.console.test_triage import submit_tip
from tests.patrols.conftest import HOME, east
from tests.tips.conftest import NEIGHBOUR

NEIGHBOUR_POINT = NEIGHBOUR  # in 110105001025, outside the staff member's community


@pytest.fixture
def on_duty(create_user, client, token_for):
    """on_duty(n, metres=0): n volunteers of 南郎家园 on duty sharing their position that far
    east of HOME (600 m east is 北郎家园, another community of 建外)."""

    def make(n, metres=0.0, *, consent=True):
        users = []
        for _ in range(n):
            user = create_user(roles=["volunteer"], home="110105001024", location_sharing=consent)
            body = {"on_duty": True}
            if consent:
                body["location"] = {"lon": east(metres), "lat": HOME[1]}
            answer = client.put("/api/v1/me/duty", json=body, headers=token_for(user))
            assert answer.status_code == 200, answer.json
            users.append(user)
        return users

    return make


def task_count(session) -> int:
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(Task))


def form(console, **overrides) -> dict[str, str]:
    page = console.get("/console/tasks/new")
    html = page.get_data(as_text=True)
    key = html.split('name="request_key" value="', 1)[1].split('"', 1)[0]
    values = {
        "csrf_token": csrf_of(page),
        "request_key": key,
        "title": "东门人员聚集, 请协助疏导",
        "kind": "event_support",
        "needed": "2",
        "hours": "2",
        "mode": "radius",
        "lon": f"{HOME[0]:.6f}",
        "lat": f"{HOME[1]:.6f}",
        "coord_system": "wgs84",
        "radius_m": "500",
    }
    values.update(overrides)
    return values


def reach_of(console, **overrides):
    values = form(console, **overrides)
    del values["csrf_token"]
    return console.get("/console/tasks/reach.json", query_string=values)


def test_the_reach_is_a_count_and_names_nobody(staff_console, on_duty):
    console, _user = staff_console
    volunteers = on_duty(6)
    answer = reach_of(console, needed="3")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    # A first phase asks up to 3 × needed, the nearest first.
    assert answer.get_json()["count"] == 6
    for volunteer in volunteers:
        assert volunteer.real_name not in body and str(volunteer.id) not in body
        assert volunteer.phone not in body


def test_a_small_reach_around_a_point_is_withheld(staff_console, on_duty):
    console, _user = staff_console
    on_duty(2)
    answer = reach_of(console).get_json()
    assert answer["count"] is None and answer["below"] == 5
    assert "5" in answer["text"]


def test_the_reach_counts_only_consented_positions_of_the_jurisdiction(staff_console, on_duty):
    console, _user = staff_console
    on_duty(5)
    on_duty(3, consent=False)
    on_duty(4, 600)  # within 1 km, but in 北郎家园: not the staff member's community
    assert reach_of(console, needed="10", radius_m="1000").get_json()["count"] == 5


def test_the_reach_of_a_place_outside_the_jurisdiction_is_refused(staff_console, on_duty):
    console, _user = staff_console
    answer = reach_of(console, lon=str(NEIGHBOUR_POINT[0]), lat=str(NEIGHBOUR_POINT[1]))
    assert answer.status_code == 422
    assert answer.get_json()["count"] is None


def test_a_task_is_sent_from_the_form_and_its_live_view_opens(staff_console, session):
    console, user = staff_console
    before = task_count(session)
    answer = console.post("/console/tasks", data=form(console))
    assert answer.status_code == 303
    task_id = answer.headers["Location"].rsplit("/", 1)[1]
    task = session.get(Task, uuid.UUID(task_id))
    assert task_count(session) == before + 1
    assert (task.created_by, task.targeting_mode, task.radius_m, task.needed) == (
        user.id,
        "radius",
        500,
        2,
    )
    page = console.get(f"/console/tasks/{task_id}")
    assert page.status_code == 200 and "东门人员聚集" in page.get_data(as_text=True)
    assert task_id in console.get("/console/tasks").get_data(as_text=True)


def test_a_form_sent_twice_makes_one_task(staff_console, session):
    console, _user = staff_console
    before = task_count(session)
    values = form(console)
    first = console.post("/console/tasks", data=values)
    again = console.post("/console/tasks", data=values)
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    assert task_count(session) == before + 1
    changed = console.post("/console/tasks", data={**values, "needed": "9"})
    assert changed.status_code == 422
    assert task_count(session) == before + 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": ""}, "标题"),
        ({"needed": "0"}, "需要人数"),
        ({"needed": "many"}, "需要人数"),
        ({"lon": "", "lat": ""}, "位置"),
        ({"radius_m": "10"}, "半径"),
        ({"mode": "area", "area_id": ""}, "区域"),
        ({"mode": "team", "team_id": str(uuid.uuid4())}, ""),
        ({"hours": "1000"}, "开放时长"),
        ({"lon": str(NEIGHBOUR_POINT[0]), "lat": str(NEIGHBOUR_POINT[1])}, "辖区"),
    ],
)
def test_bad_input_is_a_clear_message_and_nothing_is_sent(staff_console, session, overrides, field):
    console, _user = staff_console
    before = task_count(session)
    answer = console.post("/console/tasks", data=form(console, **overrides))
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="dispatch-message"' in html and field in html
    assert task_count(session) == before


def test_sending_without_the_csrf_token_sends_nothing(staff_console, session):
    console, _user = staff_console
    before = task_count(session)
    values = form(console)
    del values["csrf_token"]
    assert console.post("/console/tasks", data=values).status_code == 400
    assert task_count(session) == before


def test_a_task_for_a_tip_starts_from_the_tips_place(staff_console, session):
    console, _user = staff_console
    tip_id = submit_tip(console)
    assert f"/console/tasks/new?tip_id={tip_id}" in console.get(f"/console/tips/{tip_id}").get_data(
        as_text=True
    )
    html = console.get(f"/console/tasks/new?tip_id={tip_id}").get_data(as_text=True)
    assert f'name="tip_id" value="{tip_id}"' in html
    lon = html.split('name="lon" inputmode="decimal" value="', 1)[1].split('"', 1)[0]
    lat = html.split('name="lat" inputmode="decimal" value="', 1)[1].split('"', 1)[0]
    answer = console.post(
        "/console/tasks", data=form(console, tip_id=tip_id, lon=lon, lat=lat, kind="tip_check")
    )
    assert answer.status_code == 303
    task = session.get(Task, uuid.UUID(answer.headers["Location"].rsplit("/", 1)[1]))
    assert str(task.tip_id) == tip_id and task.kind == "tip_check"


def test_an_area_task_offers_only_areas_inside_the_jurisdiction(staff_console, session, area):
    console, _user = staff_console
    html = console.get("/console/tasks/new").get_data(as_text=True)
    community, subdistrict = area("110105001024"), area("110105001000")
    assert f'value="{community.id}"' in html and f'value="{subdistrict.id}"' not in html
    answer = console.post(
        "/console/tasks", data=form(console, mode="area", area_id=str(community.id))
    )
    assert answer.status_code == 303
    before = task_count(session)
    answer = console.post(
        "/console/tasks", data=form(console, mode="area", area_id=str(subdistrict.id))
    )
    # As in the API: an area outside the jurisdiction is not found; the form says so.
    assert answer.status_code == 404 and 'id="dispatch-message"' in answer.get_data(as_text=True)
    assert task_count(session) == before


def test_staff_of_another_community_cannot_open_the_task(app, create_user, staff_console):
    staff, _user = staff_console
    answer = staff.post("/console/tasks", data=form(staff))
    task_id = answer.headers["Location"].rsplit("/", 1)[1]
    other = create_user(roles=["grid_staff"], jurisdiction=["110105001025"])
    elsewhere = app.test_client()
    sign_in(elsewhere, other)
    assert elsewhere.get(f"/console/tasks/{task_id}").status_code == 404
    assert elsewhere.get(f"/console/tasks/{task_id}.json").status_code == 404
    assert task_id not in elsewhere.get("/console/tasks").get_data(as_text=True)


def test_the_live_view_shows_who_accepted_once_someone_answered(
    staff_console, session, on_duty, client, token_for
):
    console, _user = staff_console
    (volunteer,) = on_duty(1)
    answer = console.post("/console/tasks", data=form(console))
    task_id = answer.headers["Location"].rsplit("/", 1)[1]
    settings = tasks_service.TaskSettings.from_config(current_app.config)
    tasks_service.fan_out(session, uuid.UUID(task_id), 0, dt.datetime.now(dt.UTC), settings)
    live = console.get(f"/console/tasks/{task_id}.json").get_json()
    # One volunteer asked around a point, nobody answered: the count is withheld.
    assert live["withheld"] and live["volunteers"] == []
    accepted = client.post(
        f"/api/v1/tasks/{task_id}/responses",
        json={"action": "accept"},
        headers=token_for(volunteer),
    )
    assert accepted.status_code == 200, accepted.json
    live = console.get(f"/console/tasks/{task_id}.json").get_json()
    assert not live["withheld"] and live["recipients"] == 1 and live["accepted"] == 1
    assert [v["name"] for v in live["volunteers"]] == [volunteer.real_name]


def test_a_team_task_offers_the_teams_of_the_jurisdiction_and_counts_their_members(
    staff_console, session, client, token_for, area, create_user
):
    console, _user = staff_console
    teams = {}
    for code in ("110105001024", "110105001025"):
        made = client.post(
            "/api/v1/teams",
            json={
                "name": f"测试组织{code}",
                "kind": "community_organisation",
                "service_type": "mutual_aid",
                "area_id": str(area(code).id),
            },
            headers=token_for("admin"),
        )
        assert made.status_code == 201, made.json
        teams[code] = made.json["id"]
    ours, theirs = teams["110105001024"], teams["110105001025"]
    for _ in range(2):
        member = create_user(roles=["volunteer"], home="110105001024")
        added = client.post(
            f"/api/v1/teams/{ours}/members",
            json={"user_id": str(member.id)},
            headers=token_for("admin"),
        )
        assert added.status_code == 201, added.json
    html = console.get("/console/tasks/new").get_data(as_text=True)
    assert f'value="{ours}"' in html and f'value="{theirs}"' not in html
    # A team's count is not a place: it is shown exactly (staff see their teams' members).
    reached = reach_of(console, mode="team", team_id=ours)
    assert reached.get_json()["count"] == 2, reached.get_json()
    assert reach_of(console, mode="team", team_id=theirs).status_code == 422
    answer = console.post("/console/tasks", data=form(console, mode="team", team_id=ours))
    assert answer.status_code == 303
    task = session.get(Task, uuid.UUID(answer.headers["Location"].rsplit("/", 1)[1]))
    assert (task.targeting_mode, task.targeting["team_id"]) == ("team", ours)


def test_a_point_clicked_on_gcj02_tiles_is_stored_in_wgs84(staff_console, session):
    console, _user = staff_console
    lon, lat = from_wgs84(HOME[0], HOME[1], "gcj02")
    answer = console.post(
        "/console/tasks",
        data=form(console, lon=f"{lon:.7f}", lat=f"{lat:.7f}", coord_system="gcj02"),
    )
    assert answer.status_code == 303
    task = session.get(Task, uuid.UUID(answer.headers["Location"].rsplit("/", 1)[1]))
    point = to_shape(task.geom)
    assert (point.x, point.y) == (
        pytest.approx(HOME[0], abs=1e-5),
        pytest.approx(HOME[1], abs=1e-5),
    )


def sent_task(console) -> str:
    answer = console.post("/console/tasks", data=form(console))
    assert answer.status_code == 303
    return answer.headers["Location"].rsplit("/", 1)[1]


def cancel_form(console, task_id: str) -> dict[str, str]:
    page = console.get(f"/console/tasks/{task_id}")
    html = page.get_data(as_text=True)
    etag = html.split('name="etag" value="', 1)[1].split('"', 1)[0]
    return {"csrf_token": csrf_of(page), "etag": etag}


def test_a_task_is_cancelled_from_its_live_view(staff_console, session):
    console, _user = staff_console
    task_id = sent_task(console)
    data = {**cancel_form(console, task_id), "reason": "人员已够"}
    answer = console.post(f"/console/tasks/{task_id}/cancel", data=data)
    assert answer.status_code == 303
    session.expire_all()
    task = session.get(Task, uuid.UUID(task_id))
    assert (task.status, task.cancel_reason) == ("cancelled", "人员已够")
    assert 'id="cancel-form"' not in console.get(f"/console/tasks/{task_id}").get_data(as_text=True)


def test_a_task_changed_meanwhile_is_not_cancelled_from_the_old_page(
    staff_console, session, on_duty, client, token_for
):
    console, _user = staff_console
    (volunteer,) = on_duty(1)
    task_id = sent_task(console)
    stale = cancel_form(console, task_id)
    settings = tasks_service.TaskSettings.from_config(current_app.config)
    tasks_service.fan_out(session, uuid.UUID(task_id), 0, dt.datetime.now(dt.UTC), settings)
    client.post(
        f"/api/v1/tasks/{task_id}/responses",
        json={"action": "accept"},
        headers=token_for(volunteer),
    )
    answer = console.post(f"/console/tasks/{task_id}/cancel", data=stale)
    assert answer.status_code == 412
    assert 'id="task-message"' in answer.get_data(as_text=True)
    session.expire_all()
    assert session.get(Task, uuid.UUID(task_id)).status == "open"
    # The live figures carry the version they show, which the form then follows.
    live = console.get(f"/console/tasks/{task_id}.json").get_json()
    fresh = {**stale, "etag": live["etag"]}
    assert console.post(f"/console/tasks/{task_id}/cancel", data=fresh).status_code == 303


def test_cancelling_needs_the_csrf_token_and_the_jurisdiction(
    app, staff_console, session, create_user
):
    console, _user = staff_console
    task_id = sent_task(console)
    data = cancel_form(console, task_id)
    del data["csrf_token"]
    assert console.post(f"/console/tasks/{task_id}/cancel", data=data).status_code == 400
    other = app.test_client()
    sign_in(other, create_user(roles=["grid_staff"], jurisdiction=["110105001025"]))
    token = csrf_of(other.get("/console/tasks"))
    answer = other.post(f"/console/tasks/{task_id}/cancel", data={**data, "csrf_token": token})
    assert answer.status_code == 404
    session.expire_all()
    assert session.get(Task, uuid.UUID(task_id)).status == "open"
