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
from types import SimpleNamespace

import flask_migrate
import pytest
import sqlalchemy as sa

from app import demo
from app.auth import validators
from app.auth.models import phone_lookup
from app.core import jobs as jobs_module
from app.core.jobs import libpq_conninfo
from app.core.schema_version import MIGRATIONS_DIR
from app.extensions import db
from app.privacy.jobs import erase_deleted_accounts
from tests.auth.test_sessions import id_number
from tests.conftest import PASSWORD, make_app, server_url, throwaway_database
from tests.patrols.conftest import COMMUNITY
from tests.privacy.people import everything_of_a_volunteer, ok

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
        "consents": {
            "terms_version": "2026-11",
            "location_sharing": location_sharing,
            "id_number": True,
        },
    }
    answer = ok(client.post("/api/v1/auth/register", json=body), 201)
    return answer["user"], _bearer(answer["access_token"])


def _staff(client, app, roles, phone):
    with app.app_context():
        from app.auth.service import AuthSettings, create_account

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
            AuthSettings.from_config(app.config),
        )
        db.session.commit()
    login = client.post("/api/v1/auth/login", json={"phone": phone, "password": PASSWORD})
    return _bearer(ok(login)["access_token"])


def _run_jobs(app):
    jobs_module.run_worker(app, wait=False, install_signal_handlers=False)


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


@pytest.fixture(scope="module")
def red_team(own_database) -> SimpleNamespace:
    """Two volunteers with data in every table, the database dumped, the first one's account
    deleted and erased by the job, the database dumped again. Built once for the module: the
    tests below each read one thing of it."""
    app, owner_url = own_database
    client = app.test_client()
    phone, name = f"135{uuid.uuid4().int % 10**8:08d}", "红队志愿者甲"
    other_phone, other_name = f"136{uuid.uuid4().int % 10**8:08d}", "红队志愿者乙"
    user, me = _register(client, app, phone, name, serial=41)
    _other, other = _register(client, app, other_phone, other_name, serial=42)
    staff = _staff(client, app, ["grid_staff"], f"137{uuid.uuid4().int % 10**8:08d}")
    liaison = _staff(client, app, ["police_liaison"], f"138{uuid.uuid4().int % 10**8:08d}")
    login = client.post("/api/v1/auth/login", json={"phone": phone, "password": PASSWORD})
    me = _bearer(ok(login)["access_token"])  # a second session
    run_jobs = lambda: _run_jobs(app)  # noqa: E731
    device_token = everything_of_a_volunteer(client, app, me, staff, liaison, run_jobs)
    other_device_token = everything_of_a_volunteer(client, app, other, staff, liaison, run_jobs)
    with app.app_context():
        digest = validators.id_number_digest(
            id_number(41), app.config["ID_NUMBER_HASH_KEY"].encode()
        ).hex()
    with app.app_context():
        stored = {
            column: bytes(value).hex()
            for column, value in db.session.execute(
                sa.text(
                    "SELECT phone_ciphertext, phone_hmac, real_name_ciphertext FROM users "
                    "WHERE id = :id"
                ),
                {"id": user["id"]},
            )
            .mappings()
            .one()
            .items()
        }
        other_phone_hmac = phone_lookup(other_phone).hex()
    needles = {
        "id": user["id"],
        **stored,  # the phone and name as stored: encrypted, and the phone's keyed hash
        "id_number_masked": user["id_number_masked"],
        "id_number_digest": digest,
        "device_token": device_token,
    }
    before = _dump(owner_url)

    scheduled = ok(client.delete("/api/v1/me", json={"password": PASSWORD}, headers=me), 202)
    due = dt.datetime.fromisoformat(scheduled["erase_after"]) + dt.timedelta(minutes=1)
    with app.app_context():
        jobs_module.defer(erase_deleted_accounts, timestamp=int(due.timestamp()))
        db.session.commit()
    _run_jobs(app)

    after = _dump(owner_url)
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
    return SimpleNamespace(
        user=user,
        clear=(phone, name, other_phone, other_name),
        needles=needles,
        others=(other_phone_hmac, other_device_token),
        before=before,
        after=after,
        counts=counts,
    )


def test_the_set_up_puts_each_identifier_of_the_volunteer_in_the_database(red_team):
    for what, needle in red_team.needles.items():
        assert _where(red_team.before, needle), f"the set-up put no {what} in the database"


def test_phones_and_names_are_encrypted_at_rest_even_before_erasure(red_team):
    for clear in red_team.clear:
        assert _where(red_team.before, clear) == {}


def test_the_set_up_reaches_every_table_that_holds_a_volunteer(red_team):
    held = set(_where(red_team.before, red_team.user["id"]))
    assert held >= {f"public.{t}" for t in HOLDING} and any("checkins_p" in t for t in held)


def test_after_erasure_the_dump_holds_no_identifier_but_the_id(red_team):
    for what, needle in red_team.needles.items():
        if what != "id":
            assert _where(red_team.after, needle) == {}, f"the {what} survived erasure"


def test_the_id_survives_only_in_the_audit_trail_with_one_erasure_record(red_team):
    # The id is a random UUID; it survives only in the append-only audit trail (kept by law),
    # which never holds a phone, a name or an ID number (checked above).
    user_id = red_team.user["id"]
    assert set(_where(red_team.after, user_id)) == {"public.audit_events"}
    erased = [row for row in red_team.after["public.audit_events"] if "account.erased" in row]
    assert len(erased) == 1 and user_id in erased[0]


def test_the_other_volunteer_is_untouched(red_team):
    for needle in red_team.others:
        assert _where(red_team.after, needle)


def test_the_kept_records_stand(red_team):
    """The tip (anonymous now), its photo and history, the clue batch, the service time as
    anonymous totals."""
    counts = red_team.counts
    assert counts.anonymous_tips >= 1 and counts.batched == 2 and counts.photos == 2
    assert counts.history >= 6 and counts.kept_seconds > 0
