"""Monthly partitions of check-ins: made ahead, dropped after retention; summaries stay."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import orm, text

from app.patrols import ingest, partitions, service
from app.patrols.models import Patrol
from tests.patrols.conftest import item, now


def test_retention_drops_whole_expired_partitions_and_keeps_patrol_summaries(
    app, volunteer, start_patrol, send, client, token_for, session, connection
):
    retention = app.config["CHECKIN_RETENTION_DAYS"]
    patrol = start_patrol(
        volunteer, started_at=(now() - dt.timedelta(days=retention - 20)).isoformat()
    )
    t0 = now() - dt.timedelta(days=retention - 20) + dt.timedelta(minutes=1)
    send(volunteer, patrol["id"], [item(t0), item(t0 + dt.timedelta(minutes=5))])
    client.post(
        f"/api/v1/patrols/{patrol['id']}/end",
        json={"ended_at": (t0 + dt.timedelta(minutes=6)).isoformat()},
        headers=token_for(volunteer),
    )
    old_month = partitions.month_of(t0)
    assert old_month in partitions.existing_months(session)
    # Forty days later the fixes' month is past the retention horizon.
    later = now() + dt.timedelta(days=40)
    result = service.prune_raw(session, later, retention)
    assert partitions.partition_name(old_month) in result["dropped"]
    assert old_month not in partitions.existing_months(session)
    assert (
        connection.execute(
            text("SELECT count(*) FROM checkins WHERE patrol_id = :p"), {"p": patrol["id"]}
        ).scalar()
        == 0
    )
    kept = session.get(Patrol, uuid.UUID(patrol["id"]))
    assert kept.credited_seconds == 300 and kept.checkin_count == 2
    # Months ahead are made, and the current month is never dropped.
    assert partitions.month_of(later) in partitions.existing_months(session)
    assert partitions.month_of(now()) in partitions.existing_months(session)


@pytest.fixture
def current_month_detached(app, owner_database_url):
    """As if the daily job had never run: this month's partition is taken away by the owner (the
    application's role may not) and put back after the test's transaction has rolled back.
    Request it before anything that opens the test's connection, so it is torn down after."""
    month = partitions.month_of(now())
    name = partitions.partition_name(month)
    owner = sa.create_engine(owner_database_url, poolclass=sa.pool.NullPool)
    with owner.begin() as conn:
        conn.execute(text(f"ALTER TABLE checkins DETACH PARTITION {name}"))
        conn.execute(text(f"ALTER TABLE {name} RENAME TO checkins_detached"))
    try:
        yield month
    finally:
        with owner.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
            conn.execute(text(f"ALTER TABLE checkins_detached RENAME TO {name}"))
            lower, upper = month, partitions.next_month(month)
            conn.execute(
                text(
                    f"ALTER TABLE checkins ATTACH PARTITION {name} FOR VALUES FROM "
                    f"('{lower} 00:00:00+00') TO ('{upper} 00:00:00+00')"
                )
            )
        owner.dispose()


def test_a_missing_month_is_made_on_insert(
    current_month_detached, volunteer, start_patrol, send, session
):
    # No process that has seen the month either.
    ingest._known_months.clear()
    month = current_month_detached
    assert month not in partitions.existing_months(session)
    patrol = start_patrol(volunteer)
    answer = send(volunteer, patrol["id"], [item()]).json["items"][0]
    assert answer["outcome"] == "accepted"
    assert month in partitions.existing_months(session)


def test_a_month_made_by_a_batch_that_rolled_back_is_looked_for_again(session, monkeypatch):
    """Only months seen to exist are remembered by the process: a partition made inside a
    request that then rolled back is gone, and the next batch of that month makes it again."""
    monkeypatch.setattr(ingest, "_known_months", set())
    month = dt.date(now().year + 3, 5, 1)
    fix = ingest.Item(client_id="a", recorded_at=dt.datetime(month.year, 5, 3, tzinfo=dt.UTC))
    assert month not in partitions.existing_months(session)
    request = session.begin_nested()
    ingest._ensure_partitions(session, [fix])
    assert month in partitions.existing_months(session)
    request.rollback()
    assert month not in partitions.existing_months(session)
    ingest._ensure_partitions(session, [fix])
    assert month in partitions.existing_months(session)


def test_a_month_known_to_exist_is_not_looked_up_again(session, monkeypatch, count_queries):
    """The process remembers the months it has seen exist: a batch in them costs no lookup."""
    monkeypatch.setattr(ingest, "_known_months", set())
    fix = ingest.Item(client_id="a", recorded_at=now())
    ingest._ensure_partitions(session, [fix])
    with count_queries() as statements:
        ingest._ensure_partitions(session, [fix])
    assert statements == []


@pytest.mark.parametrize("first_is_the_daily_job", [False, True])
def test_two_transactions_making_the_same_month_at_once_both_go_on(
    app, database_url, owner_database_url, monkeypatch, first_is_the_daily_job
):
    """Two requests (or the daily job and a request) find a month missing at the same moment,
    on their own connections: the second waits for the first and then finds the month made.
    Before, the second's CREATE TABLE IF NOT EXISTS failed once the first committed (PostgreSQL
    checks the name before it waits: `relation ... already exists`, a 500 for its batch)."""
    monkeypatch.setattr(ingest, "_known_months", set())
    month = dt.date(now().year + 4, 7 if first_is_the_daily_job else 8, 1)
    fix = ingest.Item(
        client_id="a", recorded_at=dt.datetime(month.year, month.month, 9, tzinfo=dt.UTC)
    )
    owner = sa.create_engine(owner_database_url, poolclass=sa.pool.NullPool)

    def drop_the_month() -> None:  # also before: a run killed after the commit left it
        with owner.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {partitions.partition_name(month)}"))

    drop_the_month()
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    first, second = orm.Session(engine), orm.Session(engine)
    second_pid = second.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    outcome: dict[str, object] = {}

    def second_request() -> None:
        try:
            ingest._ensure_partitions(second, [fix])
            outcome["months"] = partitions.existing_months(second)  # its transaction goes on
            second.commit()
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc

    try:
        if first_is_the_daily_job:
            partitions.ensure_months(first, [month])
        else:
            ingest._ensure_partitions(first, [fix])
        pid = first.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        thread = threading.Thread(target=second_request)
        thread.start()
        # The second is waiting for the first, at the makers' lock: both looked for the month.
        # In autocommit: a transaction sees pg_stat_activity as it was at its first look.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
            deadline = time.monotonic() + 30
            while not watcher.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = :second "
                    "AND :first = ANY(pg_blocking_pids(pid)) AND wait_event = 'advisory'"
                ),
                {"first": pid, "second": second_pid},
            ).scalar_one():
                assert time.monotonic() < deadline, "the second never waited for the first"
                time.sleep(0.05)
        first.commit()
        thread.join(timeout=30)
        assert "error" not in outcome, outcome.get("error")
        assert month in outcome["months"]
    finally:
        first.close()
        second.close()
        engine.dispose()
        drop_the_month()
        owner.dispose()
