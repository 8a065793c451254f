"""Monthly partitions of check-ins: made ahead, dropped after retention; summaries stay."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import text

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


def test_a_missing_month_is_made_on_insert(volunteer, start_patrol, send, session, connection):
    # As if the daily job had never run: no partition, and no process that has seen one.
    ingest._known_months.clear()
    month = partitions.month_of(now())
    connection.execute(
        text(f"ALTER TABLE checkins DETACH PARTITION {partitions.partition_name(month)}")
    )
    connection.execute(
        text(f"ALTER TABLE {partitions.partition_name(month)} RENAME TO checkins_detached")
    )
    assert month not in partitions.existing_months(session)
    patrol = start_patrol(volunteer)
    answer = send(volunteer, patrol["id"], [item()]).json["items"][0]
    assert answer["outcome"] == "accepted"
    assert month in partitions.existing_months(session)
