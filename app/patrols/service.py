"""Patrols: start (also offline, with a phone-chosen id), end, find, summarise; the idle and
partition rules (their jobs: app/patrols/jobs.py).

A patrol's summary (simplified track, distance, credited service time per day) is computed from
its raw fixes when it ends and whenever late fixes reach an ended patrol; it is what remains
once the raw fixes' retention has passed. Service time counts only what fixes back: each gap
between consecutive plausible fixes counts up to SERVICE_MAX_GAP_MINUTES, so a phone left in a
drawer with the app open earns nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geoalchemy2 import WKTElement
from geoalchemy2.shape import to_shape
from shapely import wkb
from sqlalchemy import Select, and_, func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.areas.service import get_area
from app.auth.jurisdiction import in_jurisdiction, jurisdiction_of, within_area
from app.auth.models import User
from app.core.auth import GRID_STAFF, has_any_role
from app.core.errors import Conflict, NotFound, field_error
from app.core.fields import CLOCK_SKEW
from app.core.i18n import _
from app.patrols import partitions
from app.patrols.models import FLAG_IMPLAUSIBLE_SPEED, CheckpointVisit, Patrol
from app.service_record.service import replace_entries
from app.teams.models import Team, TeamMember

# Tolerance of the stored track's simplification, in metres (UTM 50N, EPSG:32650).
TRACK_TOLERANCE_M = 5
METRIC_SRID = 32650


@dataclass(frozen=True)
class PatrolSettings:
    """The settings the patrol rules apply; callers read them from the configuration."""

    checkin_retention_days: int
    service_timezone: str  # credited time counts on this zone's days
    service_max_gap_minutes: int
    checkin_poor_accuracy_m: float
    checkin_max_speed_mps: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PatrolSettings:
        return cls(
            checkin_retention_days=config["CHECKIN_RETENTION_DAYS"],
            service_timezone=config["SERVICE_TIMEZONE"],
            service_max_gap_minutes=config["SERVICE_MAX_GAP_MINUTES"],
            checkin_poor_accuracy_m=config["CHECKIN_POOR_ACCURACY_M"],
            checkin_max_speed_mps=config["CHECKIN_MAX_SPEED_MPS"],
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def is_staff(user: User) -> bool:
    return has_any_role(user.roles, [GRID_STAFF])


# -- starting and ending -------------------------------------------------------------------------


def _team_of(session: Session, volunteer: User, team_id: uuid.UUID) -> Team:
    team = session.get(Team, team_id)
    member = session.scalar(
        select(TeamMember.id).where(
            TeamMember.team_id == team_id,
            TeamMember.user_id == volunteer.id,
            TeamMember.left_at.is_(None),
        )
    )
    if team is None or member is None:
        raise field_error("/team_id", _("You are not a member of this team."))
    return team


def start(
    session: Session, volunteer: User, values: dict[str, Any], settings: PatrolSettings
) -> tuple[Patrol, bool]:
    """Start a patrol; returns it and whether it is new. A phone-chosen `id` that is already
    the caller's patrol returns that patrol (a replayed start); anyone else's is a 409."""
    if values.get("id") is not None:
        existing = session.get(Patrol, values["id"])
        if existing is not None:
            if existing.volunteer_id != volunteer.id:
                raise Conflict(_("This patrol id is in use; choose another random UUID."))
            return existing, False
    if values["kind"] == "team_patrol" and values.get("team_id") is None:
        raise field_error("/team_id", _("A team patrol names its team."))
    team = _team_of(session, volunteer, values["team_id"]) if values.get("team_id") else None
    now = _now()
    started_at = values.get("started_at") or now
    if started_at > now + CLOCK_SKEW:
        raise field_error("/started_at", _("started_at is in the future."))
    if started_at < partitions.horizon(now, settings.checkin_retention_days):
        raise field_error("/started_at", _("started_at is older than check-ins are kept."))
    active = session.scalar(
        select(Patrol.id).where(Patrol.volunteer_id == volunteer.id, Patrol.status == "active")
    )
    if active is not None:
        raise Conflict(
            _("You have a patrol under way; end it first."), extra={"active_patrol_id": str(active)}
        )
    patrol = Patrol(
        id=values.get("id") or uuid.uuid4(),
        volunteer_id=volunteer.id,
        kind=values["kind"],
        team_id=team.id if team else None,
        status="active",
        started_at=started_at,
        checkin_count=0,
        flagged_count=0,
        visit_count=0,
        distance_m=0,
        credited_seconds=0,
    )
    # Until its first fix, a patrol belongs where its team or its volunteer does.
    if team is not None:
        path = team.path_ids
    elif volunteer.home_community_id is not None:
        path = get_area(session, volunteer.home_community_id).path_ids
    else:
        path = {}
    for key, value in path.items():
        setattr(patrol, key, value)
    try:
        with session.begin_nested():
            session.add(patrol)
    except IntegrityError as exc:  # a concurrent start of the same volunteer, or the same id
        raise Conflict(_("You have a patrol under way; end it first.")) from exc
    return patrol, True


def own_patrol(session: Session, volunteer: User, patrol_id: uuid.UUID, *, lock: bool) -> Patrol:
    """The caller's own patrol (404 for anyone else's), locked for the batch when asked."""
    query = select(Patrol).where(Patrol.id == patrol_id, Patrol.volunteer_id == volunteer.id)
    if lock:
        query = query.with_for_update()
    patrol = session.scalar(query)
    if patrol is None:
        raise NotFound(_("No such patrol."))
    return patrol


def visible_patrol(session: Session, user: User, patrol_id: uuid.UUID) -> Patrol:
    """The caller's own patrol, or for staff one inside their jurisdiction (404 otherwise)."""
    patrol = session.get(Patrol, patrol_id)
    if patrol is None:
        raise NotFound(_("No such patrol."))
    if patrol.volunteer_id == user.id:
        return patrol
    if is_staff(user) and jurisdiction_of(user).covers(patrol.path_ids):
        return patrol
    raise NotFound(_("No such patrol."))


def end(
    session: Session,
    patrol: Patrol,
    ended_at: dt.datetime | None,
    reason: str = "ended",
    *,
    settings: PatrolSettings,
):
    """End a patrol (ending an ended one changes nothing) and summarise it."""
    if patrol.status == "ended":
        return patrol
    now = _now()
    ended_at = ended_at or now
    if ended_at > now + CLOCK_SKEW:
        raise field_error("/ended_at", _("ended_at is in the future."))
    if ended_at < patrol.started_at:
        raise field_error("/ended_at", _("ended_at is before the patrol started."))
    patrol.status, patrol.ended_at, patrol.end_reason = "ended", ended_at, reason
    session.flush()
    summarise(session, patrol, settings)
    return patrol


# -- summaries -----------------------------------------------------------------------------------

_FIXES = """
    SELECT recorded_at, geom, flags FROM checkins
    WHERE patrol_id = :patrol AND recorded_at >= :lo AND recorded_at <= :hi
"""

TRACK_SQL = text(
    f"""
    WITH fixes AS ({_FIXES}), plausible AS (
        SELECT recorded_at, geom FROM fixes WHERE flags & {FLAG_IMPLAUSIBLE_SPEED} = 0
    ), line AS (
        SELECT ST_MakeLine(geom ORDER BY recorded_at) AS geom, count(*) AS n FROM plausible
    )
    SELECT (SELECT count(*) FROM fixes),
           CASE WHEN n >= 2 THEN ST_AsBinary(ST_Transform(ST_SimplifyPreserveTopology(
                ST_Transform(geom, {METRIC_SRID}), :tolerance), 4326)) END,
           CASE WHEN n >= 2 THEN ST_Length(geom::geography) ELSE 0 END
    FROM line
    """  # noqa: S608 - formatted with constants, never input
)

CREDITED_SQL = text(
    f"""
    SELECT (recorded_at AT TIME ZONE :tz)::date AS day,
           sum(LEAST(extract(epoch FROM recorded_at - previous), :max_gap))::int AS seconds
    FROM (
        SELECT recorded_at, lag(recorded_at) OVER (ORDER BY recorded_at) AS previous
        FROM ({_FIXES}) fixes
        WHERE flags & {FLAG_IMPLAUSIBLE_SPEED} = 0
    ) gaps
    WHERE previous IS NOT NULL
    GROUP BY 1
    """  # noqa: S608 - formatted with constants, never input
)


def _bounds(patrol: Patrol) -> dict[str, Any]:
    """The fixes' time range, so that only the partitions it spans are read."""
    return {
        "patrol": patrol.id,
        "lo": patrol.started_at - CLOCK_SKEW,
        "hi": (patrol.ended_at or _now()) + CLOCK_SKEW,
    }


def live_track(session: Session, patrol: Patrol) -> tuple[int, Any, float]:
    """(fixes stored, simplified track as shapely or None, length in metres) from raw fixes."""
    count, track, length = session.execute(
        TRACK_SQL, {**_bounds(patrol), "tolerance": TRACK_TOLERANCE_M}
    ).one()
    return count, (wkb.loads(bytes(track)) if track is not None else None), float(length)


def _credited_by_day(
    session: Session, patrol: Patrol, settings: PatrolSettings
) -> dict[dt.date, int]:
    return {
        day: seconds
        for day, seconds in session.execute(
            CREDITED_SQL,
            {
                **_bounds(patrol),
                "tz": settings.service_timezone,
                "max_gap": settings.service_max_gap_minutes * 60,
            },
        )
    }


def live_summary(
    session: Session, patrol: Patrol, settings: PatrolSettings
) -> tuple[Any, float, int]:
    """(track, distance in metres, credited seconds) of a patrol under way, from its fixes so
    far, as `summarise` will compute them when it ends; nothing is written."""
    _count, track, length = live_track(session, patrol)
    return track, round(length, 1), sum(_credited_by_day(session, patrol, settings).values())


def summarise(session: Session, patrol: Patrol, settings: PatrolSettings) -> None:
    """Track, distance and credited time from the raw fixes, and the patrol's service entries.
    A patrol whose fixes were partly dropped by retention keeps the summary it has."""
    count, track, length = live_track(session, patrol)
    if count < patrol.checkin_count:
        return
    per_day = _credited_by_day(session, patrol, settings)
    patrol.track = WKTElement(track.wkt, srid=4326) if track is not None else None
    patrol.distance_m = round(length, 1)
    patrol.credited_seconds = sum(per_day.values())
    patrol.summarised_at = _now()
    replace_entries(
        session,
        volunteer_id=patrol.volunteer_id,
        source_type="patrol",
        source_id=patrol.id,
        kind=patrol.kind,
        seconds_by_day=per_day,
    )
    session.flush()


def track_of(session: Session, patrol: Patrol):
    """The patrol's simplified track (shapely LineString) or None: live while it is under way,
    the stored summary once it ended."""
    if patrol.status == "active":
        return live_track(session, patrol)[1]
    return to_shape(patrol.track) if patrol.track is not None else None


# -- lists -----------------------------------------------------------------------------------------


def list_query(session: Session, user: User, args: dict[str, Any]) -> Select:
    """The caller's patrols, or for staff (unless `mine`) those inside their jurisdiction."""
    query = select(Patrol)
    if is_staff(user) and not args.get("mine"):
        query = query.where(in_jurisdiction(user, Patrol))
        if "volunteer_id" in args:
            query = query.where(Patrol.volunteer_id == args["volunteer_id"])
        if "area_id" in args:
            query = query.where(within_area(Patrol, args["area_id"]))
    else:
        query = query.where(Patrol.volunteer_id == user.id)
    for key in ("status", "kind", "team_id"):
        if key in args:
            query = query.where(getattr(Patrol, key) == args[key])
    if "from_" in args:
        query = query.where(Patrol.started_at >= args["from_"])
    if "to" in args:
        query = query.where(Patrol.started_at < args["to"])
    return query.order_by(Patrol.started_at.desc(), Patrol.id)


def on_patrol_now(
    session: Session, staff: User, now: dt.datetime, fresh_minutes: int, limit: int = 1000
) -> tuple[list[dict[str, Any]], int]:
    """Patrols under way inside the staff member's jurisdiction, split by consent: those whose
    volunteers share their location (the location-sharing consent), the latest `limit`
    started, each with its latest fix when that is at most `fresh_minutes` old; and the number
    of the others. The others are counted, never named or placed: their volunteers did not
    agree to be followed live."""
    under_way = (Patrol.status == "active", in_jurisdiction(staff, Patrol))
    rows = session.execute(
        select(
            Patrol.id,
            Patrol.volunteer_id,
            Patrol.kind,
            Patrol.started_at,
            Patrol.last_fix_at,
            Patrol.last_lon,
            Patrol.last_lat,
            User.real_name,
        )
        .join(User, User.id == Patrol.volunteer_id)
        .where(*under_way, User.location_sharing.is_(True))
        .order_by(Patrol.started_at.desc(), Patrol.id)
        .limit(limit)
    ).all()
    others = session.scalar(
        select(func.count())
        .select_from(Patrol)
        .join(User, User.id == Patrol.volunteer_id)
        .where(*under_way, User.location_sharing.is_not(True))
    )
    fresh_after = now - dt.timedelta(minutes=fresh_minutes)
    shared = [
        {
            "id": row.id,
            "volunteer_id": row.volunteer_id,
            "kind": row.kind,
            "name": row.real_name,
            "started_at": row.started_at,
            "last_fix_at": row.last_fix_at,
            "position": (
                (row.last_lon, row.last_lat)
                if row.last_fix_at is not None
                and row.last_fix_at >= fresh_after
                and row.last_lon is not None
                else None
            ),
        }
        for row in rows
    ]
    return shared, others


# -- jobs ------------------------------------------------------------------------------------------


def end_idle(session: Session, now: dt.datetime, idle_hours: int, settings: PatrolSettings) -> int:
    """End patrols with no fix (or, without fixes, no start) for `idle_hours`, at their last
    fix; returns how many."""
    cutoff = now - dt.timedelta(hours=idle_hours)
    idle = session.scalars(
        select(Patrol)
        .where(
            Patrol.status == "active",
            or_(
                Patrol.last_fix_at < cutoff,
                and_(Patrol.last_fix_at.is_(None), Patrol.started_at < cutoff),
            ),
        )
        .with_for_update(skip_locked=True)
        .limit(1000)
    ).all()
    for patrol in idle:
        at = max(patrol.last_fix_at or patrol.started_at, patrol.started_at)
        end(session, patrol, at, "idle", settings=settings)
    return len(idle)


def prune_raw(session: Session, now: dt.datetime, retention_days: int) -> dict[str, Any]:
    """Retention: drop expired check-in partitions and delete visits older than the horizon
    (they say where a volunteer was, as fixes do)."""
    result: dict[str, Any] = partitions.maintain(session, now, retention_days)
    oldest = partitions.horizon(now, retention_days)
    deleted = session.execute(
        CheckpointVisit.__table__.delete().where(CheckpointVisit.visited_at < oldest)
    )
    result["visits_deleted"] = deleted.rowcount
    return result
