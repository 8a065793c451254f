"""Going on and off duty, the position kept for dispatch, and its erasure: off duty, when the
location-sharing consent is withdrawn, and DUTY_POSITION_MINUTES after its last report."""

from __future__ import annotations

import datetime as dt
from typing import Any

from geoalchemy2 import WKTElement
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.auth import signals as account_signals
from app.auth.models import User
from app.core.errors import field_error
from app.core.i18n import _
from app.duty.models import DutyStatus


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def set_duty(
    session: Session, user: User, on_duty: bool, location: dict[str, Any] | None
) -> DutyStatus | None:
    """On duty (with a position only under the location-sharing consent), or off duty (the
    row and its position go). `location` is loaded by app/core/fields.py: already WGS-84."""
    if not on_duty:
        session.execute(DutyStatus.__table__.delete().where(DutyStatus.user_id == user.id))
        return None
    if location is not None and not user.location_sharing:
        raise field_error(
            "/location", _("Location sharing is off: give the consent first (PATCH /me).")
        )
    duty = session.get(DutyStatus, user.id)
    if duty is None:
        duty = DutyStatus(user_id=user.id, since=_now())
        session.add(duty)
    if location is not None:
        lon, lat = location["lon"], location["lat"]
        duty.geom = WKTElement(f"POINT({lon!r} {lat!r})", srid=4326)
        duty.position_at = _now()
    session.flush()
    return duty


def expire_positions(session: Session, now: dt.datetime, minutes: int) -> int:
    """Erase the positions last reported more than `minutes` before `now`; how many went."""
    return session.execute(
        update(DutyStatus)
        .where(DutyStatus.position_at < now - dt.timedelta(minutes=minutes))
        .values(geom=None, position_at=None)
    ).rowcount


def forget_position(_sender: Any = None, *, session: Session, user: User) -> None:
    """The consent is withdrawn: the position goes at once; the volunteer stays on duty."""
    session.execute(
        update(DutyStatus).where(DutyStatus.user_id == user.id).values(geom=None, position_at=None)
    )


def connect_to_accounts() -> None:
    """Erase the position when accounts announce a withdrawn consent (app/auth/signals.py);
    create_app calls this once per app (connecting again changes nothing)."""
    account_signals.location_sharing_withdrawn.connect(forget_position)


def follow_checkins_sql(*, volunteer: str, lon: str, lat: str, at: str, stored: str) -> str:
    """An `UPDATE ... RETURNING 1` for a data-modifying CTE of a check-in statement: an on-duty
    volunteer who shares their location is where their latest fix is. The arguments are SQL
    expressions of the caller's statement (never input): the volunteer's id, the latest fix's
    `lon`, `lat` (WGS-84) and time `at`, and `stored`, true when the batch stored a new fix.
    A position already newer than `at` is kept."""
    return f"""
        UPDATE duty_status d
        SET geom = ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326), position_at = {at}
        FROM users u
        WHERE d.user_id = {volunteer} AND u.id = d.user_id AND u.location_sharing
          AND {at} IS NOT NULL AND (d.position_at IS NULL OR d.position_at < {at})
          AND {stored}
        RETURNING 1"""  # noqa: S608 - SQL expressions of ours, never input
