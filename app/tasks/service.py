"""Tasks: creation (its fan-out deferred in the same transaction), recipients chosen set-based
in SQL, widening by phases, responses with capacity kept under a row lock, cancellation.

Targeting:
- `radius`: on-duty volunteers with the location-sharing consent and a fresh position within
  `radius_m` of the task, nearest first, up to `max_recipients` per phase. When fewer than
  `needed` accepted after `widen_after_s`, the radius doubles (up to `max_radius_m`) and the
  next nearest are asked.
- `area`: every active volunteer whose home community lies in `area_id`.
- `team`: the team's current members. `named`: the volunteers listed.
Everyone targeted must be an active volunteer with the required skills; nobody is asked twice.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from geoalchemy2 import WKTElement
from geoalchemy2.shape import to_shape
from sqlalchemy import Select, bindparam, func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.types import Uuid

from app.areas.models import Area
from app.areas.service import get_area, resolve_path
from app.auth.jurisdiction import (
    NOWHERE,
    in_jurisdiction,
    jurisdiction_of,
    require_inside,
    within_area,
)
from app.auth.models import User
from app.core.errors import Conflict, NotFound, field_error
from app.core.i18n import N_, _
from app.core.jobs import defer
from app.media import service as media_service
from app.service_record.service import replace_entries
from app.tasks import fallback
from app.tasks.models import MAX_RADIUS_M, WIDEN_AFTER_S, Task, TaskRecipient
from app.teams.models import Team
from app.tips.models import Tip
from notifications.service import notify

ACTIVE = ("open", "filled")  # lifecycles a volunteer may still act on
DEFAULT_RADIUS_M = 500  # a placed task's radius when none is given: also how close "arrived" is
MAX_TASK_SERVICE = dt.timedelta(hours=12)


@dataclass(frozen=True)  # pragma: no mutate - no code assigns to settings: frozen or not alike
class TaskSettings:
    """The settings the task rules apply; callers read them from the configuration."""

    duty_position_minutes: int  # positions older than this are not "on duty nearby"
    sms_fallback_after_s: int
    service_timezone: str  # service hours count on this zone's days

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TaskSettings:
        return cls(
            duty_position_minutes=config["DUTY_POSITION_MINUTES"],
            sms_fallback_after_s=config["SMS_FALLBACK_AFTER_S"],
            service_timezone=config["SERVICE_TIMEZONE"],
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _point(location: dict[str, Any]) -> tuple[float, float]:
    """A loaded `location` (app/core/fields.py: already WGS-84) as (lon, lat)."""
    return location["lon"], location["lat"]


# -- creating ------------------------------------------------------------------------------------


def _volunteers_in_jurisdiction(session: Session, actor: User, ids: list[uuid.UUID]) -> None:
    jurisdiction = jurisdiction_of(actor)
    found = session.execute(
        select(User.id, Area.district_id, Area.subdistrict_id, Area.community_id)
        .join(Area, Area.id == User.home_community_id)
        .where(User.id.in_(ids), User.roles.contains(["volunteer"]), User.status == "active")
    ).all()
    inside = {
        row.id
        for row in found
        if jurisdiction.covers(
            {
                "district_id": row.district_id,
                "subdistrict_id": row.subdistrict_id,
                "community_id": row.community_id,
                "grid_cell_id": None,
            }
        )
    }
    if inside != set(ids):
        raise field_error(
            "/targeting/volunteer_ids", _("Every named volunteer must be of your area.")
        )


def create(session: Session, actor: User, values: dict[str, Any]) -> Task:
    """Create a task inside the actor's jurisdiction and defer its fan-out in the same
    transaction: a committed task always gets it, a rolled-back one never does."""
    task_row = _build(session, actor, values)
    session.add(task_row)
    session.flush()
    from app.tasks.jobs import fan_out_task  # (that module imports this one)

    defer(fan_out_task, task_id=str(task_row.id), phase=0)
    return task_row


def _build(session: Session, actor: User, values: dict[str, Any]) -> Task:
    """The task `values` describe, checked against every rule of creation (jurisdiction of its
    place, area, team, volunteers and tip; times; targeting), not added to the session."""
    targeting = values["targeting"]
    mode = targeting["mode"]
    now = _now()
    starts_at = values.get("starts_at") or now
    if values["ends_at"] <= max(starts_at, now):
        raise field_error("/ends_at", _("ends_at must be after starts_at and in the future."))
    task_row = Task(
        id=uuid.uuid4(),
        title=values["title"],
        description=values.get("description"),
        kind=values["kind"],
        status="open",
        starts_at=starts_at,
        ends_at=values["ends_at"],
        needed=values["needed"],
        accepted=0,
        skills=values.get("skills") or [],
        targeting_mode=mode,
        created_by=actor.id,
        phase=0,
    )
    if values.get("location") is not None:
        lon, lat = _point(values["location"])
        task_row.geom = WKTElement(f"POINT({lon!r} {lat!r})", srid=4326)
        path = resolve_path(session, lon, lat).as_dict()
        task_row.radius_m = values.get("radius_m") or DEFAULT_RADIUS_M
    elif values.get("area_id") is not None:
        path = get_area(session, values["area_id"]).path_ids
    else:
        raise field_error("/location", _("Give a location, an area, or both."))
    if values.get("area_id") is not None:
        area = get_area(session, values["area_id"])
        require_inside(actor, area.path_ids, N_("area"))
        task_row.area_id = area.id
    if not jurisdiction_of(actor).covers(path):
        raise field_error("/location", _("The task's place is outside your jurisdiction."))
    for key, value in path.items():
        setattr(task_row, key, value)
    if mode == "radius" and task_row.geom is None:
        raise field_error("/location", _("Radius targeting needs a location."))
    if mode == "area" and task_row.area_id is None:
        raise field_error("/area_id", _("Area targeting needs an area."))
    if mode == "team":
        team = session.get(Team, targeting.get("team_id")) if targeting.get("team_id") else None
        if team is None or not jurisdiction_of(actor).covers(team.path_ids):
            raise field_error("/targeting/team_id", _("No such team in your jurisdiction."))
    if mode == "named":
        _volunteers_in_jurisdiction(session, actor, targeting.get("volunteer_ids") or [])
    if values.get("tip_id") is not None:
        tip = session.get(Tip, values["tip_id"])
        if tip is None or not jurisdiction_of(actor).covers(tip.path_ids):
            raise field_error("/tip_id", _("No such tip in your jurisdiction."))
        task_row.tip_id = tip.id
    radius, widest = task_row.radius_m, targeting.get("max_radius_m")
    if widest is not None and radius is not None and widest < radius:
        raise field_error(
            "/targeting/max_radius_m",
            _("Widening cannot stop short of the task's radius (%(radius)s m).", radius=radius),
        )
    if widest is None and radius is not None:
        widest = min(4 * radius, MAX_RADIUS_M)  # the radius is at most MAX_RADIUS_M too
    task_row.targeting = {
        "team_id": str(targeting["team_id"]) if targeting.get("team_id") else None,
        "volunteer_ids": [str(i) for i in targeting.get("volunteer_ids") or []],
        "max_recipients": targeting.get("max_recipients") or min(3 * task_row.needed, 10_000),
        "widen_after_s": targeting.get("widen_after_s", WIDEN_AFTER_S),
        "max_radius_m": widest,  # None for a task without a place: it never widens
    }
    return task_row


def reach(
    session: Session,
    actor: User,
    values: dict[str, Any],
    min_count_shown: int,
    settings: TaskSettings,
) -> dict[str, Any]:
    """How many volunteers a task of these `values` would ask first (its first phase), before
    it is sent: a count, never who. The task is checked as creating it would be, so a place,
    area or team outside the jurisdiction is refused, not counted. For radius targeting a
    count below `min_count_shown` is withheld (`below`), as the task's statistics withhold it:
    otherwise probing points and radii would locate on-duty volunteers."""
    task_row = _build(session, actor, values)
    first, fresh = 0, settings.duty_position_minutes
    statement, params = _recipients_statement(task_row, first, actor, fresh)
    counted = COUNTS[statement]
    count = session.execute(counted, {**_common_params(task_row, first), **params}).scalar_one()
    if task_row.targeting_mode == "radius" and count < min_count_shown:
        return {"count": None, "below": min_count_shown, "mode": task_row.targeting_mode}
    return {"count": count, "below": None, "mode": task_row.targeting_mode}


# -- choosing and asking recipients --------------------------------------------------------------

_ELIGIBLE = """
    u.status = 'active' AND 'volunteer' = ANY(u.roles) AND u.skills @> CAST(:skills AS varchar[])
    AND NOT EXISTS (SELECT 1 FROM task_recipients r WHERE r.task_id = :task AND r.user_id = u.id)
"""

# The task's point goes in as a constant: only then does the GiST index hand out volunteers
# nearest first and LIMIT stop the scan (ordering by a joined row's column sorts every
# volunteer inside the radius: 434 ms among 1,000,000 positions, bench/bench_tasks.py).
# Only positions inside the creator's jurisdiction count, in every phase: a radius reaching
# over the border asks nobody beyond it, and cannot be used to find out who is there. A position
# has no stored area path, so "inside" is "within the outline of a granted area" (the areas'
# pieces, as every point lookup uses them).
#
# The volunteer of each position is looked up by primary key (a LATERAL subquery that OFFSET 0
# keeps from being flattened into a join): as a join, PostgreSQL estimated one position in the
# radius and scanned all of users for each position it found, 2,000 x 2,000 rows compared for
# a fan-out to 2,000 (0.7 s, and four times that a step up: the most CPU a fan-out to 10,000
# spent in PostgreSQL; bench/bench_tasks.py, docs/tasks.md).
_RADIUS_CANDIDATES = f"""
    FROM duty_status d CROSS JOIN LATERAL (
        SELECT u.id FROM users u
        WHERE u.id = d.user_id AND u.location_sharing AND {_ELIGIBLE}
        OFFSET 0) AS u
    WHERE d.geom IS NOT NULL AND d.position_at > now() - make_interval(mins => :fresh_minutes)
      AND ST_DWithin(d.geog, CAST(:point AS geography), :radius)
      AND (:everywhere OR EXISTS (
          SELECT 1 FROM area_pieces pc
          WHERE pc.area_id = ANY(CAST(:granted AS uuid[])) AND ST_Intersects(pc.geom, d.geom)))
"""  # noqa: S608 - formatted with constants, never input
_AREA_CANDIDATES = f"""
    FROM users u JOIN areas home ON home.id = u.home_community_id
    WHERE (home.id = :area OR home.subdistrict_id = :area OR home.district_id = :area)
      AND {_ELIGIBLE}
"""
_TEAM_CANDIDATES = f"""
    FROM team_members m JOIN users u ON u.id = m.user_id
    WHERE m.team_id = :team AND m.left_at IS NULL AND {_ELIGIBLE}
"""
_NAMED_CANDIDATES = f"""
    FROM users u WHERE u.id = ANY(CAST(:ids AS uuid[])) AND {_ELIGIBLE}
"""

RADIUS_SQL = text(
    f"""
    INSERT INTO task_recipients (task_id, user_id, phase, distance_m)
    SELECT :task, d.user_id, :phase, ST_Distance(d.geog, CAST(:point AS geography))
    {_RADIUS_CANDIDATES}
    ORDER BY d.geog <-> CAST(:point AS geography)
    LIMIT :limit
    ON CONFLICT DO NOTHING
    RETURNING user_id
    """
).bindparams(bindparam("task", type_=Uuid))


def _insert(candidates: str, *uuids: str):
    return text(
        f"""
        INSERT INTO task_recipients (task_id, user_id, phase)
        SELECT :task, u.id, :phase
        {candidates}
        LIMIT :limit
        ON CONFLICT DO NOTHING
        RETURNING user_id
        """
    ).bindparams(*(bindparam(name, type_=Uuid) for name in ("task", *uuids)))


def _count(candidates: str, *uuids: str):
    """How many a phase would ask: the same candidates as its INSERT, up to its LIMIT."""
    return text(
        f"SELECT count(*) FROM (SELECT 1 {candidates} LIMIT :limit) AS asked"  # noqa: S608
    ).bindparams(*(bindparam(name, type_=Uuid) for name in ("task", *uuids)))


AREA_SQL = _insert(_AREA_CANDIDATES, "area")
TEAM_SQL = _insert(_TEAM_CANDIDATES, "team")
NAMED_SQL = _insert(_NAMED_CANDIDATES)
# Each phase's INSERT, and the count `reach` answers for it before the task exists.
COUNTS = {
    RADIUS_SQL: _count(_RADIUS_CANDIDATES),
    AREA_SQL: _count(_AREA_CANDIDATES, "area"),
    TEAM_SQL: _count(_TEAM_CANDIDATES, "team"),
    NAMED_SQL: _count(_NAMED_CANDIDATES),
}


def phase_radius(task_row: Task, phase: int) -> int:
    return min(task_row.radius_m * 2**phase, task_row.targeting["max_radius_m"])


def _common_params(task_row: Task, phase: int) -> dict[str, Any]:
    return {
        "task": task_row.id,
        "phase": phase,
        "skills": list(task_row.skills),
        "limit": task_row.targeting["max_recipients"],
    }


def _recipients_statement(task_row: Task, phase: int, creator: User | None, fresh_minutes: int):
    """The INSERT choosing this phase's recipients, and its own parameters."""
    mode = task_row.targeting_mode
    if mode == "radius":
        point = to_shape(task_row.geom)
        jurisdiction = jurisdiction_of(creator) if creator is not None else NOWHERE
        return RADIUS_SQL, {
            "point": f"SRID=4326;POINT({point.x!r} {point.y!r})",
            "radius": phase_radius(task_row, phase),
            "fresh_minutes": fresh_minutes,
            "everywhere": jurisdiction.everywhere,
            "granted": [str(i) for i in sorted(jurisdiction.area_ids)],
        }
    if mode == "area":
        return AREA_SQL, {"area": task_row.area_id}
    if mode == "team":
        return TEAM_SQL, {"team": uuid.UUID(task_row.targeting["team_id"])}
    return NAMED_SQL, {"ids": task_row.targeting["volunteer_ids"]}


def choose_recipients(
    session: Session, task_row: Task, phase: int, fresh_minutes: int
) -> list[uuid.UUID]:
    """Insert this phase's recipients (set-based, in SQL), among volunteers whose position is
    at most `fresh_minutes` old for radius targeting; returns their ids."""
    creator = session.get(User, task_row.created_by)
    statement, params = _recipients_statement(task_row, phase, creator, fresh_minutes)
    return list(session.execute(statement, {**_common_params(task_row, phase), **params}).scalars())


def _summary(task_row: Task) -> str:
    text_ = task_row.description or ""
    return text_[:120]


def _offer(session: Session, task_row: Task, user_ids: list[uuid.UUID]) -> int:
    return notify(
        session,
        user_ids,
        "task_offered",
        "task",
        task_row.id,
        {
            "task_id": str(task_row.id),
            "title": task_row.title,
            "summary": _summary(task_row),
            "task_kind": task_row.kind,
            "ends_at": task_row.ends_at.isoformat(),
        },
        task_id=task_row.id,
    )


def fan_out(
    session: Session, task_id: uuid.UUID, phase: int, now: dt.datetime, settings: TaskSettings
) -> int:
    """Ask this phase's recipients; for radius tasks, schedule the next, wider phase."""
    task_row = session.scalar(select(Task).where(Task.id == task_id).with_for_update())
    if task_row is None or task_row.status != "open" or task_row.ends_at <= now:
        return 0
    if task_row.accepted >= task_row.needed:  # full (a retried first phase too): ask nobody
        return 0
    recipients = choose_recipients(session, task_row, phase, settings.duty_position_minutes)
    _offer(session, task_row, recipients)
    if recipients:  # urgent kinds: SMS to those whose app has not reported the push by then
        fallback.schedule(task_row, settings.sms_fallback_after_s)
    task_row.phase = phase
    widen_after = task_row.targeting["widen_after_s"]  # set by create, 0: never
    if (
        task_row.targeting_mode == "radius"
        and widen_after > 0
        and phase_radius(task_row, phase) < task_row.targeting["max_radius_m"]
    ):
        from app.tasks.jobs import fan_out_task  # (that module imports this one)

        defer(
            fan_out_task,
            schedule_in={"seconds": widen_after},
            task_id=str(task_row.id),
            phase=phase + 1,
        )
    session.flush()
    return len(recipients)


# -- responses -----------------------------------------------------------------------------------


def _recipient(session: Session, user: User, task_id: uuid.UUID) -> TaskRecipient:
    recipient = session.scalar(
        select(TaskRecipient)
        .where(TaskRecipient.task_id == task_id, TaskRecipient.user_id == user.id)
        .with_for_update()
    )
    if recipient is None:
        raise NotFound(_("No such task."))
    return recipient


def respond(
    session: Session,
    user: User,
    task_id: uuid.UUID,
    values: dict[str, Any],
    settings: TaskSettings,
):
    """A volunteer's answer to a task sent to them (404 for any other task). The task row is
    locked while capacity is decided: N simultaneous accepts for k places give k."""
    recipient = _recipient(session, user, task_id)
    task_row = session.scalar(select(Task).where(Task.id == task_id).with_for_update())
    now = _now()
    if task_row.status == "cancelled":
        raise Conflict(_("This task was cancelled."))
    if task_row.ends_at <= now:
        raise Conflict(_("This task is over."))
    action = values["action"]
    engaged = recipient.response in ("accepted", "arrived", "completed")
    if action == "accept":
        if not engaged:
            if task_row.accepted >= task_row.needed:
                raise Conflict(_("Enough volunteers have accepted already; thank you."))
            task_row.accepted += 1
            recipient.response, recipient.accepted_at = "accepted", now
    elif action == "decline":
        if recipient.response == "completed":
            raise Conflict(_("You completed this task already."))
        if engaged:
            task_row.accepted -= 1
        recipient.response = "declined"
    elif action == "arrive":
        if not engaged:
            raise Conflict(_("Accept the task first."))
        if recipient.response == "completed":  # it stays completed, and counted once
            raise Conflict(_("You completed this task already."))
        _check_arrival(session, task_row, values.get("location"))
        recipient.response, recipient.arrived_at = "arrived", now
    elif action == "complete":
        if not engaged:
            raise Conflict(_("Accept the task first."))
        recipient.media_ids = media_service.attach_to_task(
            session, values.get("media_ids") or [], task_row.id, user
        )
        recipient.note = values.get("note")
        if recipient.response != "completed":
            task_row.completed += 1
        recipient.response, recipient.completed_at = "completed", now
        _credit(session, user, task_row, recipient, settings.service_timezone)
    recipient.responded_at = now
    session.flush()
    return recipient


def _check_arrival(session: Session, task_row: Task, location: dict | None) -> None:
    if location is None:
        raise field_error("/location", _("Arriving needs your position."))
    if task_row.geom is None:
        return
    lon, lat = _point(location)
    point = func.ST_GeogFromText(f"SRID=4326;POINT({lon!r} {lat!r})")
    near = session.scalar(
        select(func.ST_DWithin(Task.geog, point, task_row.radius_m)).where(Task.id == task_row.id)
    )
    if not near:
        raise field_error("/location", _("You are not within the task's radius yet."))


def _credit(
    session: Session, user: User, task_row: Task, recipient: TaskRecipient, zone: str
) -> None:
    """Service hours for a completed task: from arrival (or acceptance, or the task's start)
    to completion, at most the task's length and 12 hours, on the local day it ended."""
    begun = recipient.arrived_at or recipient.accepted_at or task_row.starts_at
    seconds = (recipient.completed_at - max(begun, task_row.starts_at)).total_seconds()
    # A span below zero (completed before the time it counts from) credits nothing:
    # replace_entries keeps the days of positive seconds only.
    seconds = min(
        seconds,
        (task_row.ends_at - task_row.starts_at).total_seconds(),
        MAX_TASK_SERVICE.total_seconds(),
    )
    day = recipient.completed_at.astimezone(ZoneInfo(zone)).date()
    replace_entries(
        session,
        volunteer_id=user.id,
        source_type="task",
        source_id=task_row.id,
        kind=f"task:{task_row.kind}",
        seconds_by_day={day: int(seconds)},
    )


def cancel(session: Session, task_row: Task, reason: str | None) -> Task:
    """Cancel an open task and tell those who accepted it."""
    if task_row.status == "cancelled":
        return task_row
    task_row.status, task_row.cancelled_at, task_row.cancel_reason = "cancelled", _now(), reason
    engaged = session.scalars(
        select(TaskRecipient.user_id).where(
            TaskRecipient.task_id == task_row.id,
            TaskRecipient.response.in_(("accepted", "arrived")),
        )
    ).all()
    notify(
        session,
        engaged,
        "task_cancelled",
        "task",
        task_row.id,
        {
            "task_id": str(task_row.id),
            "title": task_row.title,
            "reason": reason or "",
            "task_kind": task_row.kind,
        },
        task_id=task_row.id,
    )
    session.flush()
    return task_row


# -- reading -------------------------------------------------------------------------------------


def managed(session: Session, actor: User, task_id: uuid.UUID) -> Task:
    task_row = session.get(Task, task_id)
    if task_row is None or not jurisdiction_of(actor).covers(task_row.path_ids):
        raise NotFound(_("No such task."))
    return task_row


def list_query(actor: User, args: dict[str, Any]) -> Select:
    query = select(Task).where(in_jurisdiction(actor, Task))
    if "status" in args:
        query = query.where(Task.lifecycle_clause(_now()) == args["status"])
    if "kind" in args:
        query = query.where(Task.kind == args["kind"])
    if "area_id" in args:
        query = query.where(within_area(Task, args["area_id"]))
    if args.get("active"):
        query = query.where(Task.lifecycle_clause(_now()).in_(ACTIVE))
    return query.order_by(Task.starts_at.desc(), Task.id)


def my_tasks_query(user: User, args: dict[str, Any]) -> Select:
    query = (
        select(Task, TaskRecipient)
        .join(TaskRecipient, TaskRecipient.task_id == Task.id)
        .where(TaskRecipient.user_id == user.id)
    )
    if args.get("active"):
        query = query.where(Task.lifecycle_clause(_now()).in_(ACTIVE))
    return query.order_by(TaskRecipient.notified_at.desc(), Task.id)


STATS_SQL = text(
    """
    SELECT
      (SELECT json_object_agg(coalesce(response, 'no_answer'), n) FROM (
          SELECT response, count(*) AS n FROM task_recipients WHERE task_id = :task
          GROUP BY response) r) AS responses,
      (SELECT json_object_agg(status, n) FROM (
          SELECT status, count(*) AS n FROM deliveries WHERE task_id = :task
          AND channel = 'push' GROUP BY status) d) AS deliveries,
      (SELECT json_object_agg(status, n) FROM (
          SELECT status, count(*) AS n FROM deliveries WHERE task_id = :task
          AND channel = 'sms' GROUP BY status) s) AS sms,
      (SELECT count(*) FROM task_recipients WHERE task_id = :task) AS recipients,
      (SELECT count(*) FROM notifications WHERE subject_type = 'task' AND subject_id = :task
          AND received_at IS NOT NULL) AS received
    """
).bindparams(bindparam("task", type_=Uuid))


def statistics(session: Session, task_row: Task, min_count_shown: int) -> dict[str, Any]:
    """Recipients, answers, deliveries and who engaged. A radius task nobody has answered yet
    shows no count below `min_count_shown`: how many phones a point and a radius reached would
    otherwise locate volunteers ("1 recipient within 200 m of my door"), probe by probe."""
    responses, deliveries, sms, recipients, received = session.execute(
        STATS_SQL, {"task": task_row.id}
    ).one()
    answered = any(key != "no_answer" for key in responses or {})
    if task_row.targeting_mode == "radius" and not answered and recipients < min_count_shown:
        return {
            "recipients": None,
            "recipients_below": min_count_shown,
            "responses": {},
            "deliveries": {},
            "sms": {},
            "volunteers": [],
        }
    engaged = (
        session.execute(
            select(
                TaskRecipient.user_id,
                User.real_name,
                TaskRecipient.response,
                TaskRecipient.accepted_at,
                TaskRecipient.arrived_at,
                TaskRecipient.completed_at,
                TaskRecipient.note,
                TaskRecipient.media_ids,
            )
            .join(User, User.id == TaskRecipient.user_id)
            .where(
                TaskRecipient.task_id == task_row.id,
                TaskRecipient.response.in_(("accepted", "arrived", "completed")),
            )
            .order_by(TaskRecipient.accepted_at)
        )
        .mappings()
        .all()
    )
    return {
        "recipients": recipients,
        "recipients_below": None,
        "responses": responses or {},
        "deliveries": deliveries or {},
        "sms": sms or {},
        "received": received,
        "volunteers": [dict(row) for row in engaged],
    }
