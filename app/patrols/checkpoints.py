"""Checkpoints: staff manage them inside their jurisdiction; the missed-window job judges
scheduled windows and alerts the responsible staff; compliance reads what it judged."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any

from geoalchemy2 import WKTElement
from sqlalchemy import Select, and_, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.areas.service import resolve_path
from app.auth.jurisdiction import in_jurisdiction, jurisdiction_of, within_area
from app.auth.models import User
from app.core.errors import NotFound, Unprocessable, field_error
from app.core.i18n import _
from app.extensions import db
from app.patrols import schedule as schedules
from app.patrols.models import Checkpoint, CheckpointVisit, CheckpointWindow
from app.patrols.schemas import QR_PREFIX
from app.patrols.service import is_staff
from notifications.service import notify


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _place(session: Session, actor: User, checkpoint: Checkpoint, location: dict) -> None:
    lon, lat = location["lon"], location["lat"]
    checkpoint.geom = WKTElement(f"POINT({lon!r} {lat!r})", srid=4326)
    path = resolve_path(session, lon, lat)
    if not jurisdiction_of(actor).covers(path.as_dict()):
        raise field_error("/location/lon", _("The place is outside your jurisdiction."))
    for key, value in path.as_dict().items():
        setattr(checkpoint, key, value)


def _responsible(session: Session, checkpoint: Checkpoint, user_id: uuid.UUID) -> uuid.UUID:
    """Whoever is alerted must be staff who can see the checkpoint."""
    user = session.get(User, user_id)
    if user is None or not is_staff(user) or not jurisdiction_of(user).covers(checkpoint.path_ids):
        raise field_error(
            "/responsible_id", _("The responsible person must be staff of this place.")
        )
    return user.id


def create(session: Session, actor: User, values: dict[str, Any]) -> Checkpoint:
    checkpoint = Checkpoint(
        id=uuid.uuid4(),
        name=values["name"],
        description=values.get("description"),
        radius_m=values["radius_m"],
        schedule=values.get("schedule"),
        min_interval_minutes=values["min_interval_minutes"],
        created_by=actor.id,
        active=True,
        # Windows judged from now on: a new schedule owes nothing for the past.
        windows_judged_until=_now(),
    )
    _place(session, actor, checkpoint, values["location"])
    checkpoint.responsible_id = _responsible(
        session, checkpoint, values.get("responsible_id") or actor.id
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


def update(session: Session, actor: User, checkpoint: Checkpoint, values: dict[str, Any]):
    if "location" in values:
        _place(session, actor, checkpoint, values.pop("location"))
    if "schedule" in values and values["schedule"] != checkpoint.schedule:
        checkpoint.windows_judged_until = max(checkpoint.windows_judged_until or _now(), _now())
    responsible = values.pop("responsible_id", checkpoint.responsible_id)
    for key, value in values.items():
        setattr(checkpoint, key, value)
    checkpoint.responsible_id = _responsible(session, checkpoint, responsible or actor.id)
    session.flush()
    return checkpoint


def rotate_code(session: Session, checkpoint: Checkpoint) -> Checkpoint:
    """A new secret: codes printed before stop counting at once."""
    checkpoint.code_secret = secrets.token_urlsafe(18)
    checkpoint.code_rotated_at = _now()
    session.flush()
    return checkpoint


def code_of(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "checkpoint_id": checkpoint.id,
        "code": checkpoint.code_secret,
        "qr_payload": f"{QR_PREFIX}:{checkpoint.id}:{checkpoint.code_secret}",
        "rotated_at": checkpoint.code_rotated_at,
    }


def managed(session: Session, actor: User, checkpoint_id: uuid.UUID) -> Checkpoint:
    checkpoint = session.get(Checkpoint, checkpoint_id)
    if checkpoint is None or not jurisdiction_of(actor).covers(checkpoint.path_ids):
        raise NotFound(_("No such checkpoint."))
    return checkpoint


def visible(session: Session, user: User, checkpoint_id: uuid.UUID) -> Checkpoint:
    """Staff: inside their jurisdiction. Volunteers: any active checkpoint (a checkpoint tour
    needs to know where to go; a checkpoint is a public place, not a person)."""
    if is_staff(user):
        return managed(session, user, checkpoint_id)
    checkpoint = session.get(Checkpoint, checkpoint_id)
    if checkpoint is None or not checkpoint.active:
        raise NotFound(_("No such checkpoint."))
    return checkpoint


def list_query(user: User, args: dict[str, Any]) -> Select:
    query = select(Checkpoint)
    if is_staff(user):
        query = query.where(in_jurisdiction(user, Checkpoint))
        if "active" in args:
            query = query.where(Checkpoint.active == args["active"])
    else:
        if "bbox" not in args and "area_id" not in args:
            raise Unprocessable(
                _("Volunteers list checkpoints of a map view: give bbox or area_id.")
            )
        query = query.where(Checkpoint.active)
    if "area_id" in args:
        query = query.where(within_area(Checkpoint, args["area_id"]))
    if "bbox" in args:
        query = query.where(Checkpoint.geom.intersects(func.ST_MakeEnvelope(*args["bbox"], 4326)))
    return query.order_by(Checkpoint.name, Checkpoint.id)


def visits_query(checkpoint: Checkpoint, start: dt.datetime, end: dt.datetime) -> Select:
    return (
        select(
            CheckpointVisit.id,
            CheckpointVisit.checkpoint_id,
            CheckpointVisit.patrol_id,
            CheckpointVisit.volunteer_id,
            User.real_name.label("volunteer_name"),
            CheckpointVisit.visited_at,
            CheckpointVisit.method,
            CheckpointVisit.distance_m,
        )
        .join(User, User.id == CheckpointVisit.volunteer_id)
        .where(
            CheckpointVisit.checkpoint_id == checkpoint.id,
            CheckpointVisit.visited_at >= start,
            CheckpointVisit.visited_at < end,
        )
        .order_by(CheckpointVisit.visited_at.desc(), CheckpointVisit.id)
    )


def compliance_query(user: User, args: dict[str, Any], start: dt.datetime, end: dt.datetime):
    """Per scheduled checkpoint inside the jurisdiction: judged windows starting in the period,
    visited and missed; the most missed first."""
    window = CheckpointWindow
    windows = func.count(window.id)
    visited = func.count(window.id).filter(window.status == "visited")
    missed = func.count(window.id).filter(window.status == "missed")
    query = (
        select(
            Checkpoint.id.label("checkpoint_id"),
            Checkpoint.name,
            windows.label("windows"),
            visited.label("visited"),
            missed.label("missed"),
            (visited / func.nullif(windows, 0).cast(db.Float)).label("rate"),
        )
        .outerjoin(
            window,
            and_(
                window.checkpoint_id == Checkpoint.id,
                window.starts_at >= start,
                window.starts_at < end,
            ),
        )
        .where(
            Checkpoint.schedule.is_not(None),
            in_jurisdiction(user, Checkpoint),
        )
        .group_by(Checkpoint.id)
        .order_by(missed.desc(), Checkpoint.name, Checkpoint.id)
    )
    if "area_id" in args:
        query = query.where(within_area(Checkpoint, args["area_id"]))
    return query


def missed_windows_query(user: User, start: dt.datetime, end: dt.datetime) -> Select:
    """Missed windows of the checkpoints inside the jurisdiction starting in the period, the
    latest first."""
    window = CheckpointWindow
    return (
        select(
            window.id,
            window.checkpoint_id,
            Checkpoint.name,
            window.starts_at,
            window.ends_at,
            window.expected_visits,
            window.visits,
        )
        .join(Checkpoint, Checkpoint.id == window.checkpoint_id)
        .where(
            window.status == "missed",
            window.starts_at >= start,
            window.starts_at < end,
            in_jurisdiction(user, Checkpoint),
        )
        .order_by(window.starts_at.desc(), window.id)
    )


# -- the missed-window job -----------------------------------------------------------------------


def judge_windows(session: Session, now: dt.datetime, grace: dt.timedelta) -> int:
    """Judge every scheduled window that ended before `now - grace` (the grace lets offline
    phones sync) and was not judged yet: visited, or missed with an alert to the checkpoint's
    responsible staff. Returns the number of missed windows. Safe to run on several workers:
    each checkpoint is taken with SKIP LOCKED, and a window is judged once (unique start)."""
    until = now - grace
    checkpoints = session.scalars(
        select(Checkpoint)
        .where(
            Checkpoint.active,
            Checkpoint.schedule.is_not(None),
            Checkpoint.windows_judged_until < until,
        )
        .with_for_update(skip_locked=True)
    ).all()
    missed = 0
    for checkpoint in checkpoints:
        for window in schedules.windows(
            checkpoint.schedule, checkpoint.windows_judged_until, until
        ):
            visits = session.scalar(
                select(func.count(CheckpointVisit.id)).where(
                    CheckpointVisit.checkpoint_id == checkpoint.id,
                    CheckpointVisit.visited_at >= window.starts_at,
                    CheckpointVisit.visited_at < window.ends_at,
                )
            )
            status = "visited" if visits >= window.expected_visits else "missed"
            inserted = session.execute(
                insert(CheckpointWindow)
                .values(
                    id=uuid.uuid4(),
                    checkpoint_id=checkpoint.id,
                    starts_at=window.starts_at,
                    ends_at=window.ends_at,
                    expected_visits=window.expected_visits,
                    visits=visits,
                    status=status,
                )
                .on_conflict_do_nothing(constraint="uq_checkpoint_windows_start")
                .returning(CheckpointWindow.id)
            ).scalar()
            if inserted is not None and status == "missed":
                missed += 1
                _alert(session, checkpoint, window, visits)
        checkpoint.windows_judged_until = until
    session.flush()
    return missed


def _alert(session: Session, checkpoint: Checkpoint, window: schedules.Window, visits: int):
    recipient = checkpoint.responsible_id or checkpoint.created_by
    if recipient is None:
        return
    notify(
        session,
        [recipient],
        "checkpoint_missed",
        "checkpoint",
        checkpoint.id,
        {
            "checkpoint_id": str(checkpoint.id),
            "name": checkpoint.name,
            "starts_at": window.starts_at.isoformat(),
            "ends_at": window.ends_at.isoformat(),
            "expected_visits": window.expected_visits,
            "visits": visits,
        },
    )
