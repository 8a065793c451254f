"""Erasure as a red team checks it: a volunteer with data in every table, made through the API
on a database of its own with real commits; the erasure job run by a real worker; then the
whole database dumped (`pg_dump --data-only`) and searched for anything that still names them.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa

from app import demo
from app.auth import validators
from app.core import jobs as jobs_module
from app.core.jobs import libpq_conninfo
from app.core.schema_version import MIGRATIONS_DIR
from app.extensions import db
from app.privacy.jobs import erase_deleted_accounts
from tests.auth.test_sessions import id_number
from tests.conftest import PASSWORD, make_app, server_url, throwaway_database
from tests.patrols.conftest import COMMUNITY, HOME, item
from tests.tips.conftest import jpeg, tip_body, upload

PG_DUMP = next(
    (
        str(path)
        for path in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"), reverse=True)
        if path.is_file()
    ),
    shutil.which("pg_dump"),
)


# Where the set-up puts the volunteer's id (checkins: through a monthly partition).
HOLDING = {
    "users",
    "auth_sessions",
    "consent_events",
    "devices",
    "duty_status",
    "idempotency_records",
    "media",
    "notifications",
    "patrols",
    "service_entries",
    "station_visits",
    "task_recipients",
    "tasks",
    "team_members",
    "tips",
    "audit_events",
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def own_database():
    """A migrated database with the demo data, for this module alone: its rows are committed
    and dumped, which the suite's rolled-back transactions cannot give."""
    with throwaway_database(server_url()) as owner_url:
        app = make_app(owner_url)
        with app.app_context():
            flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
            demo.load(db.session, log=lambda _line: None)
            db.session.commit()
        try:
            yield app, owner_url
        finally:
            with app.app_context():
                db.engine.dispose()


def _ok(response, status=(200, 201, 202)):
    assert response.status_code in (status if isinstance(status, tuple) else (status,)), (
        response.status_code,
        response.get_json(),
    )
    return response.get_json()


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def _register(client, app, phone, name, serial, location_sharing=True):
    with app.app_context():
        community = str(
            db.session.scalar(sa.text("SELECT id FROM areas WHERE code = :c"), {"c": COMMUNITY})
        )
    body = {
        "phone": phone,
        "password": PASSWORD,
        "real_name": name,
        "id_number": id_number(serial),
        "home_community_id": community,
        "consents": {"terms_version": "2026-11", "location_sharing": location_sharing},
    }
    answer = _ok(client.post("/api/v1/auth/register", json=body), 201)
    return answer["user"], _bearer(answer["access_token"])


def _staff(client, app, roles, phone):
    with app.app_context():
        from app.auth.service import create_account

        community = db.session.scalar(
            sa.text("SELECT id FROM areas WHERE code = :c"), {"c": COMMUNITY}
        )
        create_account(
            db.session,
            None,
            {
                "phone": phone,
                "password": PASSWORD,
                "real_name": "网格员王",
                "roles": roles,
                "jurisdiction": [community],
            },
        )
        db.session.commit()
    login = client.post("/api/v1/auth/login", json={"phone": phone, "password": PASSWORD})
    return _bearer(_ok(login)["access_token"])


def _run_jobs(app):
    jobs_module.run_worker(app, wait=False, install_signal_handlers=False)


def _everything_of_a_volunteer(client, app, me, staff, liaison):
    """Profile, consents, device, duty, patrol with track and check-ins, a named tip with a
    photo and its history (put in a clue batch), a task answered, service hours,
    notifications, sessions, a team membership and a station visit."""
    duty = {"on_duty": True, "location": {"lon": HOME[0], "lat": HOME[1]}}
    _ok(client.put("/api/v1/me/duty", json=duty, headers=me))
    token = f"fcm-device-token-{uuid.uuid4().hex}"
    device = {"token": token, "platform": "android"}
    _ok(client.post("/api/v1/devices", json=device, headers=me), 201)
    started = _now() - dt.timedelta(hours=2)
    patrol = _ok(
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
    _ok(client.post(f"/api/v1/patrols/{patrol['id']}/checkins", json={"items": fixes}, headers=me))
    _ok(client.post(f"/api/v1/patrols/{patrol['id']}/end", json={}, headers=me))
    photo = _ok(upload(client, jpeg(), headers=me), 201)
    tip = _ok(
        client.post(
            "/api/v1/tips",
            json=tip_body(media_ids=[photo["id"]], police_contact_consent=True),
            headers={**me, "Idempotency-Key": str(uuid.uuid4())},
        ),
        201,
    )
    _ok(
        client.post(
            f"/api/v1/me/tips/{tip['id']}/information", json={"text": "车是蓝色的"}, headers=me
        )
    )
    etag = client.get(f"/api/v1/tips/{tip['id']}", headers=staff).headers["ETag"]
    _ok(
        client.post(
            f"/api/v1/tips/{tip['id']}/transitions",
            json={"to": "triaged", "note": "已受理", "public": True},
            headers={**staff, "If-Match": etag},
        )
    )
    _ok(client.get(f"/api/v1/tips/{tip['id']}/reporter?purpose=回访核实身份", headers=staff))
    _ok(
        client.post(
            "/api/v1/clue-batches",
            json={"tip_ids": [tip["id"]], "purpose": "派出所核查线索", "case_reference": "JX-1"},
            headers=liaison,
        ),
        (201, 202),
    )
    task = _ok(
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
    _run_jobs(app)  # fan-out and pushes, the clue batch's files
    for action in ("accept", "arrive", "complete"):
        body = {"action": action, "location": {"lon": HOME[0], "lat": HOME[1]}}
        if action == "complete":
            body["note"] = "已疏导"
        _ok(client.post(f"/api/v1/tasks/{task['id']}/responses", json=body, headers=me))
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


def _dump(owner_url: str) -> dict[str, list[str]]:
    """The database's rows as pg_dump writes them, by table."""
    text = subprocess.run(  # noqa: S603 - our pg_dump, our test database's URL
        [PG_DUMP, "--data-only", "--no-owner", libpq_conninfo(owner_url)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    tables: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        start = re.match(r"COPY (\S+) ", line)
        if start:
            current = start.group(1)
            tables.setdefault(current, [])
        elif line == "\\.":
            current = None
        elif current is not None:
            tables[current].append(line)
    return tables


def _where(tables: dict[str, list[str]], needle: str) -> dict[str, list[str]]:
    return {
        table: [row for row in rows if needle in row]
        for table, rows in tables.items()
        if any(needle in row for row in rows)
    }


def test_after_erasure_the_dump_names_the_volunteer_nowhere_but_the_audit_trail(own_database):
    app, owner_url = own_database
    client = app.test_client()
    phone, name = f"135{uuid.uuid4().int % 10**8:08d}", "红队志愿者甲"
    other_phone, other_name = f"136{uuid.uuid4().int % 10**8:08d}", "红队志愿者乙"
    user, me = _register(client, app, phone, name, serial=41)
    _other, other = _register(client, app, other_phone, other_name, serial=42)
    staff = _staff(client, app, ["grid_staff"], f"137{uuid.uuid4().int % 10**8:08d}")
    liaison = _staff(client, app, ["police_liaison"], f"138{uuid.uuid4().int % 10**8:08d}")
    login = client.post("/api/v1/auth/login", json={"phone": phone, "password": PASSWORD})
    me = _bearer(_ok(login)["access_token"])  # a second session
    device_token = _everything_of_a_volunteer(client, app, me, staff, liaison)
    other_device_token = _everything_of_a_volunteer(client, app, other, staff, liaison)
    with app.app_context():
        digest = validators.id_number_digest(
            id_number(41), app.config["ID_NUMBER_HASH_KEY"].encode()
        ).hex()
    needles = {
        "id": user["id"],
        "phone": phone,
        "real_name": name,
        "id_number_masked": user["id_number_masked"],
        "id_number_digest": digest,
        "device_token": device_token,
    }
    before = _dump(owner_url)
    for what, needle in needles.items():
        assert _where(before, needle), f"the set-up put no {what} in the database"
    held = set(_where(before, user["id"]))
    assert held >= {f"public.{t}" for t in HOLDING} and any("checkins_p" in t for t in held)

    scheduled = _ok(client.delete("/api/v1/me", json={"password": PASSWORD}, headers=me), 202)
    due = dt.datetime.fromisoformat(scheduled["erase_after"]) + dt.timedelta(minutes=1)
    with app.app_context():
        jobs_module.defer(erase_deleted_accounts, timestamp=int(due.timestamp()))
        db.session.commit()
    _run_jobs(app)

    after = _dump(owner_url)
    for what in ("phone", "real_name", "id_number_masked", "id_number_digest", "device_token"):
        assert _where(after, needles[what]) == {}, f"the {what} survived erasure"
    # The id is a random UUID; it survives only in the append-only audit trail (kept by law),
    # which never holds a phone, a name or an ID number (checked above).
    assert set(_where(after, user["id"])) == {"public.audit_events"}
    erased = [row for row in after["public.audit_events"] if "account.erased" in row]
    assert len(erased) == 1 and user["id"] in erased[0]
    # The other volunteer is untouched, and the kept records stand: the tip (anonymous now),
    # its photo and history, the clue batch, the service time as anonymous totals.
    for needle in (other_phone, other_name, other_device_token):
        assert _where(after, needle)
    with app.app_context():
        counts = db.session.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM tips WHERE anonymous) AS anonymous_tips, "
                "(SELECT count(*) FROM clue_batch_items) AS batched, "
                "(SELECT count(*) FROM media WHERE tip_id IS NOT NULL) AS photos, "
                "(SELECT count(*) FROM tip_events) AS history, "
                "(SELECT sum(seconds) FROM anonymous_service_totals) AS kept_seconds"
            )
        ).one()
    assert counts.anonymous_tips >= 1 and counts.batched == 2 and counts.photos == 2
    assert counts.history >= 6 and counts.kept_seconds > 0
