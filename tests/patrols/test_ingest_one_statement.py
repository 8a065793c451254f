"""Check-ins in one statement without a lock (app/patrols/ingest.py, `optimistic`): the batch
is judged against the patrol as read, and the statement writes only while the patrol is still
as read; otherwise, or when the batch needs more than one statement (a checkpoint near or
scanned, an ended patrol), it writes nothing and the caller takes the locked way."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from flask import current_app
from sqlalchemy import event, func, select, text

from app.patrols import ingest
from app.patrols.models import CheckIn as CheckInRow
from app.patrols.models import Patrol
from app.patrols.service import PatrolSettings
from tests.patrols.conftest import HOME, east, item, now, zone_with_an_ambiguous_hour


@pytest.fixture
def patrol_of(session, volunteer, start_patrol):
    def read(patrol_id) -> Patrol:
        session.expire_all()
        return session.get(Patrol, uuid.UUID(patrol_id))

    patrol = start_patrol(volunteer)
    return lambda: read(patrol["id"])


def _ingest(session, patrol, items, **options):
    """The service as the route calls it, with the application's settings."""
    settings = PatrolSettings.from_config(current_app.config)
    return ingest.ingest(session, patrol, items, settings, **options)


def _stored(session, patrol_id) -> int:
    return session.scalar(
        select(func.count()).select_from(CheckInRow).where(CheckInRow.patrol_id == patrol_id)
    )


def test_a_patrol_changed_since_it_was_read_gets_nothing_written(app, session, patrol_of):
    with app.test_request_context():
        seen = patrol_of()  # read, unlocked
        session.expunge(seen)
        other = patrol_of()
        first = _ingest(session, other, [item(now() - dt.timedelta(minutes=5))])
        assert [a["outcome"] for a in first] == ["accepted"]
        session.commit()
        # A batch judged against the patrol as it was before that one went in.
        late = [item(now() - dt.timedelta(minutes=4), lon=east(10))]
        assert _ingest(session, seen, late, optimistic=True) is None
        assert _stored(session, seen.id) == 1
        # Read again, the same batch goes in.
        again = _ingest(session, patrol_of(), late, optimistic=True)
        assert [a["outcome"] for a in again] == ["accepted"]
        assert _stored(session, seen.id) == 2
        assert patrol_of().checkin_count == 2


def test_a_batch_that_needs_more_than_one_statement_is_left_to_the_locked_way(
    app, session, patrol_of, client, token_for, create_user
):
    staff = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    answer = client.post(
        "/api/v1/checkpoints",
        json={"name": "东门", "location": {"lon": HOME[0], "lat": HOME[1]}, "radius_m": 30},
        headers=token_for(staff),
    )
    assert answer.status_code == 201, answer.json
    with app.test_request_context():
        near = [item(now() - dt.timedelta(minutes=3))]
        assert _ingest(session, patrol_of(), near, optimistic=True) is None
        far = [item(now() - dt.timedelta(minutes=2), lon=east(500))]
        assert [a["outcome"] for a in _ingest(session, patrol_of(), far, optimistic=True)] == [
            "accepted"
        ]
        patrol = patrol_of()
        assert _stored(session, patrol.id) == 1
        # The locked way counts the visit the one statement could not.
        locked = _ingest(session, patrol, near)
        assert locked[0]["outcome"] == "accepted"
        assert [v["counted"] for v in locked[0]["visits"]] == [True]


def test_an_ended_patrol_takes_the_locked_way(
    app, session, patrol_of, volunteer, client, token_for
):
    patrol_id = str(patrol_of().id)
    answer = client.post(f"/api/v1/patrols/{patrol_id}/end", json={}, headers=token_for(volunteer))
    assert answer.status_code == 200, answer.json
    with app.test_request_context():
        late = [item(now() - dt.timedelta(minutes=30))]
        assert _ingest(session, patrol_of(), late, optimistic=True) is None


def test_the_api_answers_the_same_either_way(session, volunteer, start_patrol, send):
    """Through the API a batch near a checkpoint (locked way) and one far from any (one
    statement) are both stored, once, and a replay is a duplicate."""
    patrol = start_patrol(volunteer)
    batch = [item(now() - dt.timedelta(minutes=1), lon=east(800))]
    first = send(volunteer, patrol["id"], batch)
    replay = send(volunteer, patrol["id"], batch)
    assert first.status_code == replay.status_code == 200
    assert first.json["items"][0]["outcome"] == "accepted"
    assert replay.json["items"][0]["outcome"] == "duplicate"
    assert _stored(session, uuid.UUID(patrol["id"])) == 1


def test_a_batch_from_the_patrols_latest_fix_on_compares_with_that_fix_alone(
    app, session, patrol_of
):
    """The speed check's anchors: a batch beginning at or after the patrol's latest plausible
    fix needs that fix only (kept on the patrol: no statement); one reaching back before it
    reads the stored fixes it spans, from the last one before it."""
    t0 = now() - dt.timedelta(minutes=30)
    with app.test_request_context():
        stored = [item(t0 + dt.timedelta(minutes=n), lon=east(10 * n)) for n in range(3)]
        assert [a["outcome"] for a in _ingest(session, patrol_of(), stored)] == ["accepted"] * 3
        session.commit()
    patrol = patrol_of()
    latest = (patrol.last_fix_at, patrol.last_lon, patrol.last_lat)
    assert latest[0] == t0 + dt.timedelta(minutes=2)
    statements = []

    def listen(_conn, _cursor, statement, *_):
        statements.append(statement)

    event.listen(session.get_bind(), "before_cursor_execute", listen)
    try:
        for start in (latest[0], latest[0] + dt.timedelta(seconds=1)):
            batch = [ingest.Item(client_id="x", recorded_at=start)]
            assert ingest._anchors(session, patrol, batch) == [latest]
        assert statements == []
        back = [
            ingest.Item(client_id=str(s), recorded_at=t0 + dt.timedelta(seconds=s))
            for s in (90, 150)
        ]
        anchors = ingest._anchors(session, patrol, back)
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", listen)
    assert sorted(a[0] for a in anchors) == [t0 + dt.timedelta(minutes=n) for n in (1, 2)]
    assert len(statements) == 1


def test_a_late_batch_is_judged_against_fixes_from_before_the_patrols_start(
    app, session, volunteer, start_patrol
):
    """A fix up to the clock skew before the patrol's start is stored, and a late batch
    reaching back to it is speed-checked against it."""
    started = now() - dt.timedelta(minutes=30)
    patrol_id = start_patrol(volunteer, started_at=started.isoformat())["id"]

    def patrol():
        session.expire_all()
        return session.get(Patrol, uuid.UUID(patrol_id))

    early, late = started - dt.timedelta(minutes=4), started + dt.timedelta(minutes=10)
    with app.test_request_context():
        stored = [item(early), item(late)]
        assert [a["outcome"] for a in _ingest(session, patrol(), stored)] == ["accepted"] * 2
        # 13 km from the early fix 30 s after it; then home again 30 s later.
        batch = [
            item(early + dt.timedelta(seconds=30), lon=east(13_000)),
            item(early + dt.timedelta(seconds=60)),
        ]
        answers = _ingest(session, patrol(), batch)
    assert [a["outcome"] for a in answers] == ["accepted"] * 2
    assert [a["flags"] for a in answers] == [["implausible_speed"], []]


def test_check_in_times_are_kept_whatever_the_sessions_time_zone(
    app, session, volunteer, start_patrol
):
    """Times travel as timestamptz: a session in a zone with summer time (a DATABASE_URL whose
    server is not UTC) keeps them exact even in the hour that comes twice, where a local
    timestamp on the way would move a fix by an hour."""
    zone, at = zone_with_an_ambiguous_hour()
    started = at - dt.timedelta(minutes=30)
    patrol_id = start_patrol(volunteer, started_at=started.isoformat())["id"]
    session.execute(text(f"SET TIME ZONE '{zone}'"))  # undone with the test's transaction
    assert session.scalar(text("SELECT CAST(:at AS timestamptz)::text"), {"at": at}).endswith("+09")

    def patrol():
        session.expire_all()
        return session.get(Patrol, uuid.UUID(patrol_id))

    with app.test_request_context():
        first = _ingest(session, patrol(), [item(at)])
        assert [a["outcome"] for a in first] == ["accepted"]
        assert patrol().last_fix_at == at
        # The unlocked way compares the patrol's last fix as read: it must match as stored.
        later = [item(at + dt.timedelta(minutes=10), lon=east(10))]
        assert _ingest(session, patrol(), later, optimistic=True) is not None
    assert patrol().last_fix_at == at + dt.timedelta(minutes=10)
