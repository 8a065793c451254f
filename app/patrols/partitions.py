"""The monthly partitions of `checkins`: made ahead of time, dropped after the retention period.

A partition holds one UTC month of `recorded_at` and is named `checkins_pYYYYMM`. The daily job
makes the months from the retention horizon to two months ahead and drops every partition whose
month ended before the horizon: retention is a DROP TABLE, not a DELETE of millions of rows.
Both go through functions that run as the tables' owner (migration 0008), since the
application's role owns nothing.
Should the job not have run, an insert that finds its month missing makes it on the spot
(app/patrols/ingest.py).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session

PARENT = "checkins"
PREFIX = "checkins_p"
_NAME = re.compile(r"^checkins_p(\d{4})(\d{2})$")
MONTHS_AHEAD = 2
# Namespace "qfcp" (check-in partitions), key 0: one lock for every month (months are made
# rarely, and a batch may need two).
_MAKING_LOCK = (0x71666370, 0)


def month_of(moment: dt.datetime | dt.date) -> dt.date:
    return dt.date(moment.year, moment.month, 1)


def next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def months_between(first: dt.date, last: dt.date) -> list[dt.date]:
    months, month = [], month_of(first)
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def partition_name(month: dt.date) -> str:
    return f"{PREFIX}{month:%Y%m}"


def _create(connection: Connection | Session, month: dt.date) -> None:
    # The application's role owns no table: the owner's function makes the partition
    # (migration 0008).
    connection.execute(text("SELECT checkins_make_partition(:month)"), {"month": month})


def existing_months(connection: Connection | Session) -> set[dt.date]:
    names = connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = :parent"
        ),
        {"parent": PARENT},
    ).scalars()
    months = set()
    for name in names:
        match = _NAME.match(name)
        if match:
            months.add(dt.date(int(match[1]), int(match[2]), 1))
    return months


def ensure_months(connection: Connection | Session, months: Iterable[dt.date]) -> list[str]:
    """Make the partitions of `months` that are missing; returns the names made.

    One transaction at a time decides what is missing (a transaction-scoped advisory lock,
    held to its end): a second that also found a month missing waits for the first, then sees
    it made. Without it, the second's CREATE TABLE IF NOT EXISTS waits on the first's new name
    and then fails (`relation ... already exists`: the name was checked before the wait)."""
    connection.execute(select(func.pg_advisory_xact_lock(*_MAKING_LOCK)))
    missing = sorted(set(months) - existing_months(connection))
    for month in missing:
        _create(connection, month)
    return [partition_name(m) for m in missing]


def horizon(now: dt.datetime, retention_days: int) -> dt.datetime:
    return now - dt.timedelta(days=retention_days)


def maintain(session: Session, now: dt.datetime, retention_days: int) -> dict[str, list[str]]:
    """Make the partitions from the retention horizon to MONTHS_AHEAD months ahead; drop those
    that ended before the horizon. Returns what was made and dropped."""
    oldest = horizon(now, retention_days)
    last = month_of(now)
    for _ in range(MONTHS_AHEAD):
        last = next_month(last)
    made = ensure_months(session, months_between(month_of(oldest), last))
    dropped = []
    for month in sorted(existing_months(session)):
        upper = next_month(month)
        if dt.datetime(upper.year, upper.month, 1, tzinfo=dt.UTC) <= oldest:
            session.execute(text("SELECT checkins_drop_partition(:month)"), {"month": month})
            dropped.append(partition_name(month))
    return {"made": made, "dropped": dropped}
