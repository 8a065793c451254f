"""Service hours: what patrols (and completed tasks) credit, with a daily cap.

Sources write their credited seconds per local day (`replace_entries`); the cap
(SERVICE_DAILY_CAP_HOURS) applies when the record is read, to a volunteer's whole day across
sources, and each source keeps its share of the capped day (so the figures by kind add up to
the total).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, delete, insert, text
from sqlalchemy.orm import Session
from sqlalchemy.types import Date

from app.areas.service import get_area
from app.auth.jurisdiction import require_inside
from app.auth.models import User
from app.core.errors import NotFound
from app.core.i18n import N_, _
from app.service_record.models import ServiceEntry


def replace_entries(
    session: Session,
    *,
    volunteer_id: uuid.UUID,
    source_type: str,
    source_id: uuid.UUID,
    kind: str,
    seconds_by_day: Mapping[dt.date, int],
) -> None:
    """The source's credited seconds per local day for the volunteer, replacing what it
    credited them before."""
    session.execute(
        delete(ServiceEntry).where(
            ServiceEntry.volunteer_id == volunteer_id,
            ServiceEntry.source_type == source_type,
            ServiceEntry.source_id == source_id,
        )
    )
    rows = [
        {
            "id": uuid.uuid4(),
            "volunteer_id": volunteer_id,
            "source_type": source_type,
            "source_id": source_id,
            "kind": kind,
            "day": day,
            "seconds": int(seconds),
        }
        for day, seconds in sorted(seconds_by_day.items())
        if seconds > 0
    ]
    if rows:
        session.execute(insert(ServiceEntry), rows)


RECORD_SQL = text(
    """
    WITH per_kind AS (
        SELECT day, kind, sum(seconds) AS seconds
        FROM service_entries
        WHERE volunteer_id = :volunteer AND day >= :first AND day <= :last
        GROUP BY day, kind
    ), per_day AS (
        SELECT day, sum(seconds) AS seconds FROM per_kind GROUP BY day
    )
    SELECT to_char(k.day, 'YYYY-MM') AS month, k.kind,
           sum(k.seconds * LEAST(1.0, :cap / d.seconds::numeric)) AS seconds,
           count(DISTINCT k.day) AS days,
           sum(k.seconds) AS uncapped
    FROM per_kind k JOIN per_day d USING (day)
    GROUP BY 1, 2
    ORDER BY 1, 2
    """
).bindparams(bindparam("first", type_=Date), bindparam("last", type_=Date))


def _hours(seconds: float) -> float:
    return round(float(seconds) / 3600, 2)


def record(
    session: Session,
    volunteer: User,
    first: dt.date,
    last: dt.date,
    *,
    cap_hours: int,
    timezone: str,
) -> dict[str, Any]:
    """Hours by month and by kind for `first`..`last` (local dates in `timezone`, inclusive),
    capped at `cap_hours` a day."""
    rows = session.execute(
        RECORD_SQL,
        {"volunteer": volunteer.id, "first": first, "last": last, "cap": cap_hours * 3600},
    ).all()
    months: dict[str, dict[str, Any]] = {}
    by_kind: dict[str, float] = {}
    total = uncapped = 0.0
    for month, kind, seconds, _days, raw in rows:
        entry = months.setdefault(month, {"month": month, "hours": 0.0, "by_kind": {}})
        entry["by_kind"][kind] = _hours(seconds)
        entry["hours"] += float(seconds)
        by_kind[kind] = by_kind.get(kind, 0.0) + float(seconds)
        total += float(seconds)
        uncapped += float(raw)
    for entry in months.values():
        entry["hours"] = _hours(entry["hours"])
    return {
        "volunteer_id": volunteer.id,
        "from": first,
        "to": last,
        "total_hours": _hours(total),
        "uncapped_hours": _hours(uncapped),
        "daily_cap_hours": cap_hours,
        "timezone": timezone,
        "by_kind": {kind: _hours(s) for kind, s in sorted(by_kind.items())},
        "by_month": list(months.values()),
    }


def volunteer_for_staff(session: Session, actor: User, user_id: uuid.UUID) -> User:
    """A volunteer whose home community is inside the staff member's jurisdiction (404 else)."""
    user = session.get(User, user_id)
    if user is None or user.home_community_id is None:
        raise NotFound(_("No such volunteer."))
    require_inside(actor, get_area(session, user.home_community_id).path_ids, N_("volunteer"))
    return user
