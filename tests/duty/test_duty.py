"""Duty and location: kept only with consent, only the latest, erased off duty or on withdrawal."""

from __future__ import annotations

import datetime as dt

from app.core.jobs import jobs
from app.duty import service as duty_service
from app.duty.jobs import expire_duty_positions
from app.duty.models import DutyStatus
from geo.crs import from_wgs84
from tests.patrols.conftest import COMMUNITY, HOME, item, now


def test_a_position_needs_the_location_consent(client, token_for, create_user, session):
    user = create_user(roles=["volunteer"], location_sharing=False)
    body = {"on_duty": True, "location": {"lon": HOME[0], "lat": HOME[1]}}
    response = client.put("/api/v1/me/duty", json=body, headers=token_for(user))
    assert response.status_code == 422
    assert response.json["errors"][0]["pointer"] == "/location"
    assert session.get(DutyStatus, user.id) is None


def test_the_duty_answer_shows_the_position_held_in_the_asked_crs(client, token_for, create_user):
    user = create_user(roles=["volunteer"], location_sharing=True)
    headers = token_for(user)
    body = {"on_duty": True, "location": {"lon": HOME[0], "lat": HOME[1]}}
    put = client.put("/api/v1/me/duty", json=body, headers=headers).json
    assert put["position"] == {"lon": HOME[0], "lat": HOME[1], "crs": "wgs84"}
    mars = client.get("/api/v1/me/duty", query_string={"crs": "gcj02"}, headers=headers).json
    expected = from_wgs84(HOME[0], HOME[1], "gcj02")
    assert (mars["position"]["lon"], mars["position"]["lat"]) == expected
    assert mars["position"]["crs"] == "gcj02"
    assert expected != HOME  # GCJ-02 is some hundreds of metres off in Beijing
    # On duty without a position (heartbeat without location): the server holds none.
    other = create_user(roles=["volunteer"], location_sharing=False)
    state = client.put("/api/v1/me/duty", json={"on_duty": True}, headers=token_for(other)).json
    assert state["on_duty"] is True and state["position"] is None
    bad = client.get("/api/v1/me/duty", query_string={"crs": "utm"}, headers=headers)
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"


def test_going_off_duty_erases_the_position(volunteer_at, client, token_for, session):
    user = volunteer_at(10)
    assert session.get(DutyStatus, user.id).geom is not None
    state = client.put("/api/v1/me/duty", json={"on_duty": False}, headers=token_for(user)).json
    assert state["on_duty"] is False
    session.expire_all()
    assert session.get(DutyStatus, user.id) is None


def test_withdrawing_consent_erases_the_position(volunteer_at, client, token_for, session):
    user = volunteer_at(10)
    response = client.patch("/api/v1/me", json={"location_sharing": False}, headers=token_for(user))
    assert response.status_code == 200
    session.expire_all()
    duty = session.get(DutyStatus, user.id)
    assert duty.geom is None and duty.position_at is None


def test_positions_expire(app, volunteer_at, session, client, token_for):
    minutes = app.config["DUTY_POSITION_MINUTES"]
    stale, fresh = volunteer_at(10), volunteer_at(20)
    at = now()
    session.get(DutyStatus, stale.id).position_at = at - dt.timedelta(minutes=minutes, seconds=1)
    session.get(DutyStatus, fresh.id).position_at = at - dt.timedelta(minutes=minutes, seconds=-1)
    session.commit()
    assert duty_service.expire_positions(session, at, minutes) >= 1
    session.expire_all()
    gone = session.get(DutyStatus, stale.id)
    assert (gone.geom, gone.position_at) == (None, None)
    state = client.get("/api/v1/me/duty", headers=token_for(stale)).json
    assert (state["on_duty"], state["position"]) == (True, None)  # on duty still, nowhere
    kept = session.get(DutyStatus, fresh.id)
    assert kept.geom is not None
    assert kept.position_at == at - dt.timedelta(minutes=minutes, seconds=-1)


def test_patrol_checkins_move_an_on_duty_position(volunteer_at, client, token_for, session):
    from geoalchemy2.shape import to_shape

    user = volunteer_at(0)
    patrol = client.post(
        "/api/v1/patrols", json={"kind": "walk_along"}, headers=token_for(user)
    ).json
    fix = item(lon=HOME[0] + 0.001, lat=HOME[1])
    client.post(f"/api/v1/patrols/{patrol['id']}/checkins", json=fix, headers=token_for(user))
    session.expire_all()
    point = to_shape(session.get(DutyStatus, user.id).geom)
    assert abs(point.x - (HOME[0] + 0.001)) < 1e-9


def test_a_fix_older_than_the_held_position_leaves_it(volunteer_at, client, token_for, session):
    from geoalchemy2.shape import to_shape

    user = volunteer_at(0)
    ahead = now() + dt.timedelta(minutes=1)  # a heartbeat sent after the fix below was taken
    session.get(DutyStatus, user.id).position_at = ahead
    session.flush()
    headers = token_for(user)
    patrol = client.post("/api/v1/patrols", json={"kind": "walk_along"}, headers=headers).json
    fix = item(lon=HOME[0] + 0.001, lat=HOME[1])
    stored = client.post(f"/api/v1/patrols/{patrol['id']}/checkins", json=fix, headers=headers)
    assert stored.json["items"][0]["outcome"] == "accepted"
    session.expire_all()
    duty = session.get(DutyStatus, user.id)
    assert duty.position_at == ahead
    assert abs(to_shape(duty.geom).x - HOME[0]) < 1e-9


def test_checkins_give_no_position_without_the_consent(create_user, client, token_for, session):
    user = create_user(roles=["volunteer"], home=COMMUNITY, location_sharing=False)
    headers = token_for(user)
    assert client.put("/api/v1/me/duty", json={"on_duty": True}, headers=headers).status_code == 200
    patrol = client.post("/api/v1/patrols", json={"kind": "walk_along"}, headers=headers).json
    stored = client.post(f"/api/v1/patrols/{patrol['id']}/checkins", json=item(), headers=headers)
    assert stored.json["items"][0]["outcome"] == "accepted"
    session.expire_all()
    duty = session.get(DutyStatus, user.id)
    assert duty.geom is None and duty.position_at is None


def test_the_expiry_job_still_runs_under_its_name_from_before_duty_left_tasks():
    # Jobs queued by a release before the move carry the old name.
    assert jobs.tasks["app.tasks.service.expire_duty_positions"] is expire_duty_positions
