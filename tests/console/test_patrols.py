"""The console's patrols page, through the Flask client: who is on patrol now names and places
only volunteers who consented to share their location (others are a count), the read is
audited, other communities' patrols stay out, and checkpoint compliance lists missed windows."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from app.core.audit import AuditEvent
from app.patrols.models import CheckpointWindow
from tests.console.conftest import sign_in
from tests.patrols.conftest import HOME


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def on_patrol(client, token_for, user, lon=HOME[0], lat=HOME[1]) -> str:
    """`user` starts a patrol and sends one fix at (lon, lat); the patrol's id."""
    headers = token_for(user)
    started = client.post(
        "/api/v1/patrols",
        json={"kind": "walk_along", "started_at": (now() - dt.timedelta(minutes=20)).isoformat()},
        headers=headers,
    )
    assert started.status_code == 201, started.json
    patrol_id = started.json["id"]
    fix = {
        "client_id": str(uuid.uuid4()),
        "recorded_at": (now() - dt.timedelta(minutes=1)).isoformat(),
        "location": {"lon": lon, "lat": lat, "accuracy_m": 10},
    }
    answer = client.post(
        f"/api/v1/patrols/{patrol_id}/checkins", json={"items": [fix]}, headers=headers
    )
    assert answer.json["items"][0]["outcome"] == "accepted", answer.json
    return patrol_id


def volunteer(create_user, consent: bool):
    return create_user(roles=["volunteer"], home="110105001024", location_sharing=consent)


def test_only_volunteers_who_share_their_location_are_named_and_placed(
    staff_console, create_user, client, token_for, session
):
    console, staff = staff_console
    sharing, private = volunteer(create_user, True), volunteer(create_user, False)
    shared_patrol = on_patrol(client, token_for, sharing)
    private_patrol = on_patrol(client, token_for, private)
    answer = console.get("/console/patrols.json")
    body = answer.get_data(as_text=True)
    items = answer.get_json()["items"]
    (shown,) = [i for i in items if i["id"] == shared_patrol]
    assert shown["name"] == sharing.real_name
    assert shown["lon"] == HOME[0] and shown["lat"] == HOME[1]
    assert private.real_name not in body and private_patrol not in body
    assert answer.get_json()["others"] >= 1
    page = console.get("/console/patrols").get_data(as_text=True)
    assert sharing.real_name in page and private.real_name not in page
    # Reading live positions is on the audit trail, as reading a track is: once for the
    # page and its refreshes within ten minutes, for the volunteer who shares only.
    session.expire_all()
    read = session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.action == "patrol.position_read", AuditEvent.actor_id == staff.id
        )
    ).all()
    assert [(e.object_ids, e.details["volunteer_id"]) for e in read] == [
        ([shared_patrol], str(sharing.id))
    ]


def test_the_volunteer_finds_the_read_of_their_position_in_their_access_log(
    staff_console, create_user, client, token_for
):
    console, _staff = staff_console
    sharing = volunteer(create_user, True)
    patrol_id = on_patrol(client, token_for, sharing)
    console.get("/console/patrols.json")
    log = client.get("/api/v1/me/access-log", headers=token_for(sharing)).json["items"]
    assert [(e["what"], e["role"], e["object_id"]) for e in log] == [
        ("position", "grid_staff", patrol_id)
    ]


def test_a_withdrawn_consent_hides_the_volunteer_at_once(
    staff_console, create_user, client, token_for
):
    console, _staff = staff_console
    sharing = volunteer(create_user, True)
    patrol_id = on_patrol(client, token_for, sharing)
    assert patrol_id in console.get("/console/patrols.json").get_data(as_text=True)
    withdrawn = client.patch(
        "/api/v1/me", json={"location_sharing": False}, headers=token_for(sharing)
    )
    assert withdrawn.status_code == 200, withdrawn.json
    assert patrol_id not in console.get("/console/patrols.json").get_data(as_text=True)


def test_patrols_of_another_community_are_not_shown(app, create_user, client, token_for):
    sharing = volunteer(create_user, True)
    patrol_id = on_patrol(client, token_for, sharing)
    other = app.test_client()
    sign_in(other, create_user(roles=["grid_staff"], jurisdiction=["110105001025"]))
    answer = other.get("/console/patrols.json")
    assert answer.status_code == 200
    assert patrol_id not in answer.get_data(as_text=True)
    assert sharing.real_name not in other.get("/console/patrols").get_data(as_text=True)


def test_compliance_lists_the_missed_windows_of_my_checkpoints(
    staff_console, client, token_for, session
):
    console, staff = staff_console
    made = client.post(
        "/api/v1/checkpoints",
        json={
            "name": "南郎家园北门",
            "location": {"lon": HOME[0], "lat": HOME[1]},
            "radius_m": 30,
            "schedule": {
                "timezone": "Asia/Shanghai",
                "windows": [{"days": ["mon"], "start": "23:00", "end": "01:00"}],
            },
        },
        headers=token_for(staff),
    )
    assert made.status_code == 201, made.json
    starts = now() - dt.timedelta(hours=30)
    session.add(
        CheckpointWindow(
            checkpoint_id=uuid.UUID(made.json["id"]),
            starts_at=starts,
            ends_at=starts + dt.timedelta(hours=2),
            expected_visits=1,
            visits=0,
            status="missed",
        )
    )
    session.flush()
    html = console.get("/console/patrols?period=7d").get_data(as_text=True)
    assert f'data-checkpoint-id="{made.json["id"]}"' in html
    missed = html.split('id="missed-windows"', 1)[1]
    assert "南郎家园北门" in missed and "0 / 1" in missed
    # A window older than the period chosen is not listed.
    html = console.get("/console/patrols?period=24h").get_data(as_text=True)
    assert "南郎家园北门" not in html.split('id="missed-windows"', 1)[1]


def test_a_bad_period_is_a_page_not_a_problem(staff_console):
    console, _staff = staff_console
    answer = console.get("/console/patrols?period=forever")
    assert answer.status_code == 422 and answer.mimetype == "text/html"
    assert console.get("/console/patrols.json?crs=bd09").status_code == 422
