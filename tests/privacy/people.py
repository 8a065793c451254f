"""A volunteer with data in every table that can hold something of theirs, made through the
API as the apps make it (shared by the data-copy and the erasure tests)."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from app.extensions import db
from tests.patrols.conftest import HOME, item
from tests.tips.conftest import jpeg, tip_body, upload


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ok(response, status=(200, 201, 202)):
    assert response.status_code in (status if isinstance(status, tuple) else (status,)), (
        response.status_code,
        response.get_json(),
    )
    return response.get_json()


def everything_of_a_volunteer(client, app, me, staff, liaison, run_jobs):
    """Profile, consents, device, duty, patrol with track and check-ins, a named tip with a
    photo and its history (put in a clue batch), a task answered and completed with a photo,
    service hours, notifications, sessions, a team membership and a station visit."""
    duty = {"on_duty": True, "location": {"lon": HOME[0], "lat": HOME[1]}}
    ok(client.put("/api/v1/me/duty", json=duty, headers=me))
    token = f"fcm-device-token-{uuid.uuid4().hex}"
    device = {"token": token, "platform": "android"}
    ok(client.post("/api/v1/devices", json=device, headers=me), 201)
    started = _now() - dt.timedelta(hours=2)
    patrol = ok(
        client.post(
            "/api/v1/patrols",
            json={"kind": "walk_along", "started_at": started.isoformat()},
            headers={**me, "Idempotency-Key": str(uuid.uuid4())},
        ),
        201,
    )
    fixes = [
        item(started + dt.timedelta(minutes=m), lon=HOME[0] + m * 0.00005) for m in range(0, 60, 2)
    ]
    ok(client.post(f"/api/v1/patrols/{patrol['id']}/checkins", json={"items": fixes}, headers=me))
    ok(client.post(f"/api/v1/patrols/{patrol['id']}/end", json={}, headers=me))
    photo = ok(upload(client, jpeg(), headers=me), 201)
    tip = ok(
        client.post(
            "/api/v1/tips",
            json=tip_body(media_ids=[photo["id"]], police_contact_consent=True),
            headers={**me, "Idempotency-Key": str(uuid.uuid4())},
        ),
        201,
    )
    ok(
        client.post(
            f"/api/v1/me/tips/{tip['id']}/information", json={"note": "车是蓝色的"}, headers=me
        )
    )
    etag = client.get(f"/api/v1/tips/{tip['id']}", headers=staff).headers["ETag"]
    ok(
        client.post(
            f"/api/v1/tips/{tip['id']}/transitions",
            json={"to": "triaged", "note": "已受理", "public": True},
            headers={**staff, "If-Match": etag},
        )
    )
    ok(client.get(f"/api/v1/tips/{tip['id']}/reporter?purpose=回访核实身份", headers=staff))
    ok(
        client.post(
            "/api/v1/clue-batches",
            json={"tip_ids": [tip["id"]], "purpose": "派出所核查线索", "case_reference": "JX-1"},
            headers=liaison,
        ),
        (201, 202),
    )
    task = ok(
        client.post(
            "/api/v1/tasks",
            json={
                "title": "东门协助疏导",
                "kind": "event_support",
                "location": {"lon": HOME[0], "lat": HOME[1]},
                "ends_at": (_now() + dt.timedelta(hours=2)).isoformat(),
                "needed": 1,
                "targeting": {"mode": "named", "volunteer_ids": [me_id(client, me)]},
            },
            headers=staff,
        ),
        201,
    )
    run_jobs()  # fan-out and pushes, the clue batch's files
    finished = ok(upload(client, jpeg(), headers=me), 201)  # kept with the task it completes
    for action in ("accept", "arrive", "complete"):
        body = {"action": action, "location": {"lon": HOME[0], "lat": HOME[1]}}
        if action == "complete":
            body.update(note="已疏导", media_ids=[finished["id"]])
        ok(client.post(f"/api/v1/tasks/{task['id']}/responses", json=body, headers=me))
    with app.app_context():
        user_id = me_id(client, me)
        team = db.session.scalar(sa.text("SELECT id FROM teams LIMIT 1"))
        station = db.session.scalar(sa.text("SELECT id FROM stations LIMIT 1"))
        db.session.execute(
            sa.text("INSERT INTO team_members (id, team_id, user_id) VALUES (:i, :t, :u)"),
            {"i": uuid.uuid4(), "t": team, "u": user_id},
        )
        db.session.execute(
            sa.text(
                "INSERT INTO station_visits (id, station_id, visited_at, volunteer_id) "
                "VALUES (:i, :s, now(), :u)"
            ),
            {"i": uuid.uuid4(), "s": station, "u": user_id},
        )
        db.session.commit()
    return token


def me_id(client, headers) -> str:
    return client.get("/api/v1/me", headers=headers).get_json()["id"]
