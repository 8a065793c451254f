"""Checkpoints: staff manage them; fixes and scans make visits; windows are judged."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text, update

from app.patrols import checkpoints as checkpoints_service
from app.patrols import ingest
from app.patrols.models import Checkpoint, CheckpointVisit, CheckpointWindow, Patrol
from notifications.models import Notification
from tests.patrols.conftest import (
    COMMUNITY,
    HOME,
    east,
    item,
    now,
    zone_with_an_ambiguous_hour,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def staff(create_user):
    return create_user(roles=["grid_staff"], jurisdiction=[COMMUNITY])


@pytest.fixture
def make_checkpoint(client, token_for, staff):
    def make(**body):
        payload = {
            "name": "南郎家园东门",
            "location": {"lon": HOME[0], "lat": HOME[1]},
            "radius_m": 30,
        }
        payload.update(body)
        response = client.post("/api/v1/checkpoints", json=payload, headers=token_for(staff))
        assert response.status_code == 201, response.json
        return response.json

    return make


def code_of(client, token_for, staff, checkpoint):
    return client.get(f"/api/v1/checkpoints/{checkpoint['id']}/code", headers=token_for(staff)).json


def test_staff_cannot_place_a_checkpoint_outside_their_jurisdiction(
    client, token_for, staff, session
):
    body = {"name": "望京", "location": {"lon": 116.47, "lat": 40.0}}
    response = client.post("/api/v1/checkpoints", json=body, headers=token_for(staff))
    assert response.status_code == 422
    assert session.scalar(select(Checkpoint).where(Checkpoint.name == "望京")) is None


def test_volunteers_cannot_manage_checkpoints(client, token_for, volunteer):
    body = {"name": "x", "location": {"lon": HOME[0], "lat": HOME[1]}}
    assert (
        client.post("/api/v1/checkpoints", json=body, headers=token_for(volunteer)).status_code
        == 403
    )


def test_a_fix_inside_the_radius_is_a_visit(
    volunteer, start_patrol, send, make_checkpoint, client, token_for, staff
):
    checkpoint = make_checkpoint()
    patrol = start_patrol(volunteer)
    answer = send(volunteer, patrol["id"], [item(lon=east(10))]).json["items"][0]
    assert answer["visits"] == [
        {"checkpoint_id": checkpoint["id"], "counted": True, "reason": None}
    ]
    visits = client.get(
        f"/api/v1/checkpoints/{checkpoint['id']}/visits", headers=token_for(staff)
    ).json
    assert [(v["method"], v["volunteer_id"]) for v in visits["items"]] == [
        ("gps", str(volunteer.id))
    ]


def test_a_fix_outside_the_radius_is_no_visit(
    volunteer, start_patrol, send, make_checkpoint, session
):
    make_checkpoint()
    patrol = start_patrol(volunteer)
    answer = send(volunteer, patrol["id"], [item(lon=east(60))]).json["items"][0]
    assert answer["visits"] == []
    assert session.scalar(select(CheckpointVisit)) is None


def test_a_qr_scan_outside_the_radius_is_not_a_visit(
    volunteer, start_patrol, send, make_checkpoint, client, token_for, staff, session
):
    checkpoint = make_checkpoint()
    code = code_of(client, token_for, staff, checkpoint)["code"]
    patrol = start_patrol(volunteer)
    scan = {"id": checkpoint["id"], "method": "qr", "code": code}
    answer = send(volunteer, patrol["id"], [item(lon=east(500), checkpoint=scan)]).json["items"][0]
    assert answer["outcome"] == "accepted"
    assert answer["visits"] == [
        {"checkpoint_id": checkpoint["id"], "counted": False, "reason": "outside_radius"}
    ]
    assert session.scalar(select(CheckpointVisit)) is None


def test_a_valid_scan_inside_the_radius_is_a_qr_visit_and_a_wrong_code_is_not(
    volunteer, start_patrol, send, make_checkpoint, client, token_for, staff, session
):
    checkpoint = make_checkpoint(min_interval_minutes=0)
    code = code_of(client, token_for, staff, checkpoint)["code"]
    patrol = start_patrol(volunteer)
    t0 = now() - dt.timedelta(minutes=10)
    wrong = {"id": checkpoint["id"], "method": "nfc", "code": "not-the-code"}
    right = {"id": checkpoint["id"], "method": "qr", "code": code}
    answers = send(
        volunteer,
        patrol["id"],
        [item(t0, checkpoint=wrong), item(t0 + dt.timedelta(minutes=1), checkpoint=right)],
    ).json["items"]
    assert {
        "checkpoint_id": checkpoint["id"],
        "counted": False,
        "reason": "invalid_code",
    } in answers[0]["visits"]
    assert answers[1]["visits"] == [
        {"checkpoint_id": checkpoint["id"], "counted": True, "reason": None}
    ]
    methods = session.scalars(
        select(CheckpointVisit.method).order_by(CheckpointVisit.visited_at)
    ).all()
    assert "qr" in methods


def test_a_rotated_code_stops_counting_at_once(
    volunteer, start_patrol, send, make_checkpoint, client, token_for, staff
):
    checkpoint = make_checkpoint()
    old = code_of(client, token_for, staff, checkpoint)["code"]
    rotated = client.post(
        f"/api/v1/checkpoints/{checkpoint['id']}/code/rotate", headers=token_for(staff)
    ).json
    assert rotated["code"] != old and rotated["qr_payload"].endswith(rotated["code"])
    patrol = start_patrol(volunteer)
    scan = {"id": checkpoint["id"], "method": "qr", "code": old}
    answer = send(volunteer, patrol["id"], [item(lon=east(200), checkpoint=scan)]).json["items"][0]
    assert answer["visits"] == [
        {"checkpoint_id": checkpoint["id"], "counted": False, "reason": "invalid_code"}
    ]


def test_a_scan_of_an_unknown_checkpoint_is_reported(volunteer, start_patrol, send):
    patrol = start_patrol(volunteer)
    missing = str(uuid.uuid4())
    scan = {"id": missing, "method": "qr", "code": "x"}
    answer = send(volunteer, patrol["id"], [item(checkpoint=scan)]).json["items"][0]
    assert answer["outcome"] == "accepted"
    assert answer["visits"] == [
        {"checkpoint_id": missing, "counted": False, "reason": "unknown_checkpoint"}
    ]


def test_visits_within_the_minimum_interval_count_once(
    volunteer, start_patrol, send, make_checkpoint, session, client, token_for
):
    make_checkpoint(min_interval_minutes=10)
    patrol = start_patrol(volunteer)
    t0 = now() - dt.timedelta(minutes=30)
    send(volunteer, patrol["id"], [item(t0 + dt.timedelta(minutes=m)) for m in (0, 3, 6, 12)])
    times = session.scalars(
        select(CheckpointVisit.visited_at).order_by(CheckpointVisit.visited_at)
    ).all()
    assert [round((t - times[0]).total_seconds() / 60) for t in times] == [0, 12]
    detail = client.get(f"/api/v1/patrols/{patrol['id']}", headers=token_for(volunteer)).json
    assert detail["visit_count"] == 2


def test_the_minimum_interval_holds_against_visits_stored_by_earlier_batches(
    volunteer, start_patrol, send, make_checkpoint, session
):
    """The interval is kept from every counted visit, not only those of the same batch: a
    later batch, or an older phone syncing late, counts only what is far enough from the
    visits stored already, on either side."""
    make_checkpoint(min_interval_minutes=10)
    patrol = start_patrol(volunteer)
    t0 = now() - dt.timedelta(minutes=40)

    def counted(minutes):
        answer = send(volunteer, patrol["id"], [item(t0 + dt.timedelta(minutes=minutes))])
        return [v["counted"] for v in answer.json["items"][0]["visits"]]

    assert counted(20) == [True]
    assert counted(25) == []  # 5 minutes after a stored visit
    assert counted(11) == []  # synced late: 9 minutes before it
    assert counted(9) == [True]  # 11 minutes before it
    assert counted(31) == [True]
    times = session.scalars(
        select(CheckpointVisit.visited_at).order_by(CheckpointVisit.visited_at)
    ).all()
    assert [round((t - t0).total_seconds() / 60) for t in times] == [9, 20, 31]


def _metres_north(session, lon, lat, metres):
    """The point `metres` north of (lon, lat) on the spheroid, as PostGIS measures it."""
    return session.execute(
        text(
            "SELECT ST_X(p::geometry), ST_Y(p::geometry) FROM (SELECT ST_Project("
            "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :metres, 0) AS p) AS s"
        ),
        {"lon": lon, "lat": lat, "metres": metres},
    ).one()


def test_a_visits_distance_is_kept_to_the_decimetre(
    volunteer, start_patrol, send, make_checkpoint, session, client, token_for, staff
):
    """Staff see how far from the checkpoint a visit was, to 0.1 m: enough to tell a visit at
    the gate from one at the fence, no finer (a volunteer's position is not kept to the
    centimetre)."""
    checkpoint = make_checkpoint(min_interval_minutes=0)
    patrol = start_patrol(volunteer)
    lon, lat = _metres_north(session, HOME[0], HOME[1], 12.34)
    send(volunteer, patrol["id"], [item(lon=lon, lat=lat)])
    visits = client.get(
        f"/api/v1/checkpoints/{checkpoint['id']}/visits", headers=token_for(staff)
    ).json["items"]
    assert [v["distance_m"] for v in visits] == [12.3]


def test_visits_exactly_the_minimum_interval_apart_both_count(
    volunteer, start_patrol, send, make_checkpoint
):
    """The interval is the least time between two counted visits: one that far after the
    last counts, in the same batch or a later one; a second less does not."""
    make_checkpoint(min_interval_minutes=10)
    patrol = start_patrol(volunteer)
    t0 = now() - dt.timedelta(minutes=40)
    minutes = dt.timedelta(minutes=1)
    batch = [item(t0), item(t0 + 10 * minutes - dt.timedelta(seconds=1)), item(t0 + 10 * minutes)]
    answers = send(volunteer, patrol["id"], batch).json["items"]
    assert [[v["counted"] for v in a["visits"]] for a in answers] == [[True], [], [True]]
    later = send(volunteer, patrol["id"], [item(t0 + 20 * minutes)]).json["items"][0]
    assert [v["counted"] for v in later["visits"]] == [True]


def test_a_checkpoint_of_the_largest_radius_is_visited_from_its_edge(
    volunteer, start_patrol, send, make_checkpoint, session
):
    """Checkpoints may have a radius of up to 1000 m, and the proximity search finds a fix
    anywhere inside one (its bound is not tighter than the largest radius)."""
    checkpoint = make_checkpoint(radius_m=1000)
    patrol = start_patrol(volunteer)
    lon, lat = _metres_north(session, HOME[0], HOME[1], 999.9)
    answer = send(volunteer, patrol["id"], [item(lon=lon, lat=lat)]).json["items"][0]
    assert answer["visits"] == [
        {"checkpoint_id": checkpoint["id"], "counted": True, "reason": None}
    ]
    lon, lat = _metres_north(session, HOME[0], HOME[1], 1000.1)
    assert send(volunteer, patrol["id"], [item(lon=lon, lat=lat)]).json["items"][0]["visits"] == []


def test_an_edit_needs_the_etag_read_before(make_checkpoint, client, token_for, staff):
    checkpoint = make_checkpoint()
    url = f"/api/v1/checkpoints/{checkpoint['id']}"
    read = client.get(url, headers=token_for(staff))
    stale = client.patch(
        url, json={"radius_m": 50}, headers={**token_for(staff), "If-Match": '"nope"'}
    )
    assert stale.status_code == 412
    fresh = client.patch(
        url, json={"radius_m": 50}, headers={**token_for(staff), "If-Match": read.headers["ETag"]}
    )
    assert fresh.status_code == 200 and fresh.json["radius_m"] == 50


def test_other_staff_do_not_see_the_checkpoint(make_checkpoint, client, token_for, create_user):
    checkpoint = make_checkpoint()
    elsewhere = create_user(roles=["grid_staff"], jurisdiction=["110105002000"])
    assert (
        client.get(
            f"/api/v1/checkpoints/{checkpoint['id']}", headers=token_for(elsewhere)
        ).status_code
        == 404
    )
    assert client.get("/api/v1/checkpoints", headers=token_for(elsewhere)).json["items"] == []


def night_schedule():
    return {
        "timezone": "Asia/Shanghai",
        "windows": [{"days": ["mon"], "start": "23:00", "end": "01:00"}],
    }


def monday_night(weeks_ago: int) -> dt.datetime:
    """23:00 Asia/Shanghai on a Monday `weeks_ago` weeks back."""
    today = dt.datetime.now(SHANGHAI).date()
    monday = today - dt.timedelta(days=today.weekday(), weeks=weeks_ago)
    return dt.datetime.combine(monday, dt.time(23, 0), SHANGHAI)


def test_missed_windows_across_midnight_in_shanghai_are_judged_and_alerted(
    volunteer, start_patrol, send, make_checkpoint, session, staff, client, token_for
):
    checkpoint = make_checkpoint(schedule=night_schedule())
    stored = session.get(Checkpoint, uuid.UUID(checkpoint["id"]))
    stored.windows_judged_until = monday_night(3) - dt.timedelta(hours=1)
    # Only this checkpoint is judged (the demo data has scheduled ones too).
    session.execute(update(Checkpoint).where(Checkpoint.id != stored.id).values(active=False))
    session.commit()
    # Week 2: a visit at 00:30 on Tuesday, inside Monday's night window. Week 1: none.
    visit_at = monday_night(2) + dt.timedelta(minutes=90)
    patrol = start_patrol(volunteer, started_at=(visit_at - dt.timedelta(minutes=5)).isoformat())
    send(volunteer, patrol["id"], [item(visit_at)])
    client.post(
        f"/api/v1/patrols/{patrol['id']}/end",
        json={"ended_at": (visit_at + dt.timedelta(minutes=5)).isoformat()},
        headers=token_for(volunteer),
    )
    judged_at = monday_night(0) - dt.timedelta(hours=1)
    missed = checkpoints_service.judge_windows(session, judged_at, dt.timedelta(minutes=30))
    windows = session.scalars(
        select(CheckpointWindow)
        .where(CheckpointWindow.checkpoint_id == stored.id)
        .order_by(CheckpointWindow.starts_at)
    ).all()
    assert [(w.starts_at.astimezone(SHANGHAI).strftime("%a %H:%M"), w.status) for w in windows] == [
        ("Mon 23:00", "missed"),
        ("Mon 23:00", "visited"),
        ("Mon 23:00", "missed"),
    ]
    assert [w.ends_at - w.starts_at for w in windows] == [dt.timedelta(hours=2)] * 3
    assert missed == 2
    alerts = session.scalars(
        select(Notification).where(Notification.kind == "checkpoint_missed")
    ).all()
    assert len(alerts) == 2 and {a.user_id for a in alerts} == {staff.id}
    # Run again: nothing judged twice, nobody alerted twice.
    assert checkpoints_service.judge_windows(session, judged_at, dt.timedelta(minutes=30)) == 0
    assert (
        len(
            session.scalars(
                select(Notification).where(Notification.kind == "checkpoint_missed")
            ).all()
        )
        == 2
    )
    compliance = client.get(
        "/api/v1/checkpoints/compliance",
        query_string={"from": (monday_night(4)).isoformat(), "to": now().isoformat()},
        headers=token_for(staff),
    ).json
    assert [c for c in compliance["items"] if c["checkpoint_id"] == checkpoint["id"]] == [
        {
            "checkpoint_id": checkpoint["id"],
            "name": checkpoint["name"],
            "windows": 3,
            "visited": 1,
            "missed": 2,
            "rate": pytest.approx(1 / 3),
        }
    ]


def test_a_late_synced_visit_turns_a_missed_window_into_a_visited_one(
    volunteer, start_patrol, send, make_checkpoint, session
):
    checkpoint = make_checkpoint(schedule=night_schedule())
    stored = session.get(Checkpoint, uuid.UUID(checkpoint["id"]))
    stored.windows_judged_until = monday_night(1) - dt.timedelta(hours=1)
    session.commit()
    checkpoints_service.judge_windows(
        session, monday_night(1) + dt.timedelta(hours=3), dt.timedelta(0)
    )
    mine = CheckpointWindow.checkpoint_id == stored.id
    assert session.scalar(select(CheckpointWindow.status).where(mine)) == "missed"
    visit_at = monday_night(1) + dt.timedelta(minutes=20)
    patrol = start_patrol(volunteer, started_at=(visit_at - dt.timedelta(minutes=1)).isoformat())
    send(volunteer, patrol["id"], [item(visit_at)])
    session.expire_all()
    window = session.scalar(select(CheckpointWindow).where(mine))
    assert (window.status, window.visits) == ("visited", 1)


def test_a_late_visit_in_the_hour_that_comes_twice_counts_in_its_own_window(
    volunteer, start_patrol, send, make_checkpoint, session
):
    """A visit synced after its window was judged is matched to the window by instants, whatever
    the session's time zone: in the hour a summer time's end brings twice, a local time on the
    way would move the visit an hour later, past the window's end (a DATABASE_URL whose server
    is not in UTC)."""
    zone, at = zone_with_an_ambiguous_hour()
    checkpoint = uuid.UUID(make_checkpoint(min_interval_minutes=0)["id"])
    session.add(
        CheckpointWindow(
            checkpoint_id=checkpoint,
            starts_at=at - dt.timedelta(minutes=30),
            ends_at=at + dt.timedelta(minutes=30),
            expected_visits=1,
            visits=0,
            status="missed",
        )
    )
    session.commit()
    session.execute(text(f"SET TIME ZONE '{zone}'"))  # undone with the test's transaction
    patrol = start_patrol(volunteer, started_at=(at - dt.timedelta(minutes=10)).isoformat())
    answer = send(volunteer, patrol["id"], [item(at)]).json["items"][0]
    assert answer["visits"] == [{"checkpoint_id": str(checkpoint), "counted": True, "reason": None}]
    session.expire_all()
    window = session.scalar(
        select(CheckpointWindow).where(CheckpointWindow.checkpoint_id == checkpoint)
    )
    assert (window.status, window.visits) == ("visited", 1)


def test_a_qr_payload_is_sent_as_read_and_credits_only_the_checkpoint_scanned(
    volunteer, start_patrol, send, make_checkpoint, client, token_for, staff, session
):
    scanned = make_checkpoint(min_interval_minutes=0)
    beside = make_checkpoint(name="南郎家园西门", min_interval_minutes=0)  # same place
    payload = code_of(client, token_for, staff, scanned)["qr_payload"]
    assert payload.startswith(f"qunfang:checkpoint:{scanned['id']}:")
    patrol = start_patrol(volunteer)
    t0 = now() - dt.timedelta(minutes=10)
    answers = send(
        volunteer,
        patrol["id"],
        [
            item(t0, checkpoint={"method": "qr", "code": payload}),
            item(
                t0 + dt.timedelta(minutes=1),
                checkpoint={"id": beside["id"], "method": "qr", "code": payload},
            ),
            item(
                t0 + dt.timedelta(minutes=2),
                checkpoint={"method": "qr", "code": "qunfang:checkpoint:nope"},
            ),
            item(t0 + dt.timedelta(minutes=3), checkpoint={"method": "qr", "code": "bare"}),
        ],
    ).json["items"]
    assert answers[0]["outcome"] == "accepted"
    assert answers[0]["visits"] == [
        {"checkpoint_id": scanned["id"], "counted": True, "reason": None}
    ]
    # Naming one checkpoint and scanning another's payload; a broken payload; a bare code
    # without an id: each refused alone.
    assert [(a["outcome"], a["reason"]) for a in answers[1:]] == [("rejected", "invalid")] * 3
    visited = session.scalars(select(CheckpointVisit.checkpoint_id)).all()
    assert [str(v) for v in visited] == [scanned["id"]]
    # A GPS fix (no scan) there still credits both.
    fix = send(volunteer, patrol["id"], [item(t0 + dt.timedelta(minutes=5))]).json["items"][0]
    assert {v["checkpoint_id"] for v in fix["visits"] if v["counted"]} == {
        scanned["id"],
        beside["id"],
    }


def test_a_gps_scan_of_a_checkpoint_inside_its_radius_is_a_gps_visit(
    volunteer, start_patrol, send, make_checkpoint, session
):
    """A scan by GPS carries no code: nothing to check but the distance."""
    checkpoint = make_checkpoint()
    patrol = start_patrol(volunteer)
    scan = {"id": checkpoint["id"], "method": "gps"}
    answer = send(volunteer, patrol["id"], [item(lon=east(10), checkpoint=scan)]).json["items"][0]
    assert answer["visits"] == [
        {"checkpoint_id": checkpoint["id"], "counted": True, "reason": None}
    ]
    assert session.scalars(select(CheckpointVisit.method)).all() == ["gps"]


@pytest.mark.parametrize(("beyond", "counted"), [(0.0, True), (1e-9, False)])
def test_a_scan_exactly_at_the_radius_counts_and_one_beyond_does_not(
    app, volunteer, start_patrol, make_checkpoint, session, beyond, counted
):
    """The radius is inside. (The distance comes from PostGIS; here it is given, so that it
    can be exactly the radius.)"""
    checkpoint = make_checkpoint(radius_m=30, min_interval_minutes=0)
    patrol = session.get(Patrol, uuid.UUID(start_patrol(volunteer)["id"]))
    at = now() - dt.timedelta(minutes=1)
    fix = ingest.Item(client_id="k", recorded_at=at, lon=HOME[0], lat=HOME[1])
    fix.scan = {"id": uuid.UUID(checkpoint["id"]), "method": "qr", "code": "c0de"}
    near = [(checkpoint["id"], 30.0, 0, "c0de", 30.0 + beyond)]
    with app.test_request_context():
        ingest._visits(session, patrol, [(fix, near)])
    reason = None if counted else "outside_radius"
    assert fix.visits == [
        {"checkpoint_id": uuid.UUID(checkpoint["id"]), "counted": counted, "reason": reason}
    ]
    assert len(session.scalars(select(CheckpointVisit)).all()) == int(counted)


@pytest.mark.parametrize(("radius", "fits"), [(4, False), (5, True), (1000, True), (1001, False)])
def test_a_checkpoints_radius_is_5_to_1000_m(
    client, token_for, staff, make_checkpoint, session, radius, fits
):
    """On creation and on edit; a refused radius is a problem and stores nothing."""
    body = {"name": "北门", "location": {"lon": HOME[0], "lat": HOME[1]}, "radius_m": radius}
    created = client.post("/api/v1/checkpoints", json=body, headers=token_for(staff))
    assert created.status_code == (201 if fits else 422), created.json
    existing = make_checkpoint(radius_m=30)
    url = f"/api/v1/checkpoints/{existing['id']}"
    etag = client.get(url, headers=token_for(staff)).headers["ETag"]
    edited = client.patch(
        url, json={"radius_m": radius}, headers={**token_for(staff), "If-Match": etag}
    )
    assert edited.status_code == (200 if fits else 422), edited.json
    if not fits:
        assert created.content_type == edited.content_type == "application/problem+json"
    session.expire_all()
    assert session.scalars(select(Checkpoint.radius_m).where(Checkpoint.name == "北门")).all() == (
        [radius] if fits else []
    )
    assert session.get(Checkpoint, uuid.UUID(existing["id"])).radius_m == (radius if fits else 30)


def test_a_scan_credits_the_checkpoint_scanned_wherever_it_is_among_those_near(
    app, volunteer, start_patrol, make_checkpoint, session
):
    """The checkpoints near a fix come in any order; the scanned one is found among them."""
    first = make_checkpoint(radius_m=30, min_interval_minutes=0)
    second = make_checkpoint(name="南门", radius_m=30, min_interval_minutes=0)
    patrol = session.get(Patrol, uuid.UUID(start_patrol(volunteer)["id"]))
    fix = ingest.Item(client_id="k", recorded_at=now(), lon=HOME[0], lat=HOME[1])
    fix.scan = {"id": uuid.UUID(second["id"]), "method": "gps"}
    near = [(c["id"], 30.0, 0, "", 3.0) for c in (first, second)]
    with app.test_request_context():
        ingest._visits(session, patrol, [(fix, near)])
    credited = {"checkpoint_id": uuid.UUID(second["id"]), "counted": True, "reason": None}
    assert fix.visits == [credited]
