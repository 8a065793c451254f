"""A copy of one's own data (PIPL Art. 45), as one JSON document.

Every section is read by the person's own id, never through a staff scope, so a section holds
their rows only. Each is capped (SECTION_LIMIT items, newest first; CHECKIN_LIMIT check-ins in
all) so the answer stays bounded: a capped section is named in `truncated`, and the caps in
`limits`. What staff wrote about the person (internal tip notes) is staff's work and is not in
it; the lines of a tip's history the reporter may see are, as in GET /me/tips.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.models import ConsentEvent, User
from app.core import audit
from app.duty.models import DutyStatus
from app.media.models import Media
from app.patrols.models import CheckIn, Patrol
from app.privacy.service import access_log_query
from app.service_record.models import ServiceEntry
from app.stations.models import StationVisit
from app.tasks.models import Task, TaskRecipient
from app.teams.models import TeamMember
from app.tips import service as tips_service
from app.tips.models import Tip
from notifications.models import Device, Notification

SECTION_LIMIT = 1000
CHECKIN_LIMIT = 20_000
SECTIONS = (
    "profile",
    "consent_history",
    "devices",
    "duty",
    "team_memberships",
    "patrols",
    "tips",
    "tasks",
    "service_hours",
    "station_visits",
    "notifications",
    "access_log",
)


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _row(obj: Any, *names: str) -> dict[str, Any]:
    return {name: _iso(getattr(obj, name)) for name in names}


def mask_token(token: str) -> str:
    """A push token shown so its owner recognises it, not so anyone can use it."""
    return f"{token[:4]}…{token[-4:]}" if len(token) > 12 else "…"


class _Capped:
    """Reads sections with the cap applied, remembering which were cut."""

    def __init__(self, session: Session):
        self.session = session
        self.truncated: list[str] = []

    def rows(self, name: str, query) -> list[Any]:
        found = list(self.session.execute(query.limit(SECTION_LIMIT + 1)))
        if len(found) > SECTION_LIMIT:
            self.truncated.append(name)
        return found[:SECTION_LIMIT]

    def scalars(self, name: str, query) -> list[Any]:
        return [row[0] for row in self.rows(name, query)]


def _profile(user: User) -> dict[str, Any]:
    return {
        **_row(
            user,
            "id",
            "phone",
            "real_name",
            "id_number_masked",
            "status",
            "home_community_id",
            "verified_at",
            "created_at",
        ),
        "roles": list(user.roles),
        "volunteer_types": list(user.volunteer_types),
        "skills": list(user.skills),
        "jurisdiction": [str(i) for i in user.jurisdiction_ids],
        "consents": {key: _iso(value) for key, value in user.consents.items()},
    }


def _patrols(read: _Capped, user_id: uuid.UUID) -> list[dict[str, Any]]:
    patrols = read.rows(
        "patrols",
        select(Patrol, func.ST_AsGeoJSON(Patrol.track))
        .where(Patrol.volunteer_id == user_id)
        .order_by(Patrol.started_at.desc()),
    )
    ids = [patrol.id for patrol, _track in patrols]
    fixes = list(
        read.session.execute(
            select(
                CheckIn.patrol_id,
                CheckIn.recorded_at,
                func.ST_X(CheckIn.geom),
                func.ST_Y(CheckIn.geom),
                CheckIn.accuracy_m,
                CheckIn.scan_method,
            )
            .where(CheckIn.volunteer_id == user_id, CheckIn.patrol_id.in_(ids))
            .order_by(CheckIn.recorded_at.desc())
            .limit(CHECKIN_LIMIT + 1)
        )
    )
    if len(fixes) > CHECKIN_LIMIT:
        read.truncated.append("patrols.checkins")
    by_patrol: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for patrol_id, at, lon, lat, accuracy, method in reversed(fixes[:CHECKIN_LIMIT]):
        by_patrol.setdefault(patrol_id, []).append(
            {"recorded_at": at.isoformat(), "lon": lon, "lat": lat, "accuracy_m": accuracy}
            | ({"scan_method": method} if method else {})
        )
    return [
        {
            **_row(
                patrol,
                "id",
                "kind",
                "status",
                "started_at",
                "ended_at",
                "distance_m",
                "credited_seconds",
                "checkin_count",
            ),
            "track": json.loads(track) if track else None,
            "checkins": by_patrol.get(patrol.id, []),
        }
        for patrol, track in patrols
    ]


def _tips(read: _Capped, user_id: uuid.UUID) -> list[dict[str, Any]]:
    tips = read.rows(
        "tips",
        select(Tip, func.ST_X(Tip.geom), func.ST_Y(Tip.geom))
        .where(Tip.reporter_id == user_id)
        .order_by(Tip.created_at.desc()),
    )
    ids = [tip.id for tip, _lon, _lat in tips]
    photos: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for media in read.session.scalars(
        select(Media).where(Media.tip_id.in_(ids)).order_by(Media.created_at)
    ):
        photos.setdefault(media.tip_id, []).append(
            {
                "id": str(media.id),
                "url": f"/api/v1/media/{media.id}",
                "content_type": media.content_type,
                "created_at": media.created_at.isoformat(),
            }
        )
    answer = []
    for tip, lon, lat in tips:
        history = [
            _row(event, "at", "kind", "from_status", "to_status", "note")
            for event in tips_service.public_history(read.session, tip)
        ]
        answer.append(
            {
                **_row(
                    tip,
                    "id",
                    "code",
                    "category_code",
                    "description",
                    "address_text",
                    "occurred_at",
                    "status",
                    "police_contact_consent",
                    "created_at",
                ),
                "location": {"lon": lon, "lat": lat} if lon is not None else None,
                "photos": photos.get(tip.id, []),
                "history": history,
            }
        )
    return answer


def _tasks(read: _Capped, user_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = read.rows(
        "tasks",
        select(TaskRecipient, Task.title, Task.kind, Task.starts_at, Task.ends_at)
        .join(Task, Task.id == TaskRecipient.task_id)
        .where(TaskRecipient.user_id == user_id)
        .order_by(TaskRecipient.notified_at.desc()),
    )
    return [
        {
            "task": {
                "id": str(answer.task_id),
                "title": title,
                "kind": kind,
                "starts_at": starts.isoformat(),
                "ends_at": ends.isoformat(),
            },
            **_row(
                answer,
                "notified_at",
                "distance_m",
                "response",
                "responded_at",
                "accepted_at",
                "arrived_at",
                "completed_at",
                "note",
            ),
            "media_ids": [str(m) for m in answer.media_ids],
        }
        for answer, title, kind, starts, ends in rows
    ]


def copy_of_data(session: Session, user: User) -> dict[str, Any]:
    """Everything the platform holds about `user` that is theirs to have, and the audit
    record that they asked for it."""
    read = _Capped(session)
    me = user.id
    consents = read.scalars(
        "consent_history",
        select(ConsentEvent)
        .where(ConsentEvent.user_id == me)
        .order_by(ConsentEvent.recorded_at.desc()),
    )
    devices = read.scalars(
        "devices", select(Device).where(Device.user_id == me).order_by(Device.created_at.desc())
    )
    duty = session.get(DutyStatus, me)
    duty_position = (
        session.execute(
            select(func.ST_X(DutyStatus.geom), func.ST_Y(DutyStatus.geom)).where(
                DutyStatus.user_id == me, DutyStatus.geom.is_not(None)
            )
        ).first()
        if duty
        else None
    )
    memberships = read.scalars(
        "team_memberships",
        select(TeamMember).where(TeamMember.user_id == me).order_by(TeamMember.joined_at.desc()),
    )
    hours = read.scalars(
        "service_hours",
        select(ServiceEntry)
        .where(ServiceEntry.volunteer_id == me)
        .order_by(ServiceEntry.day.desc(), ServiceEntry.id),
    )
    visits = read.scalars(
        "station_visits",
        select(StationVisit)
        .where(StationVisit.volunteer_id == me)
        .order_by(StationVisit.visited_at.desc()),
    )
    notes = read.scalars(
        "notifications",
        select(Notification)
        .where(Notification.user_id == me)
        .order_by(Notification.created_at.desc(), Notification.id),
    )
    accesses = read.rows("access_log", access_log_query(me))
    document = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(),
        "profile": _profile(user),
        "consent_history": [_row(c, "kind", "value", "recorded_at") for c in consents],
        "devices": [
            {
                **_row(d, "id", "platform", "provider", "app_version", "created_at"),
                "last_seen_at": _iso(d.last_seen_at),
                "token_masked": mask_token(d.token),
            }
            for d in devices
        ],
        "duty": {
            "on_duty": duty is not None,
            "since": _iso(duty.since) if duty else None,
            "position": (
                {"lon": duty_position[0], "lat": duty_position[1], "at": _iso(duty.position_at)}
                if duty_position
                else None
            ),
        },
        "team_memberships": [
            _row(m, "team_id", "role", "joined_at", "left_at") for m in memberships
        ],
        "patrols": _patrols(read, me),
        "tips": _tips(read, me),
        "tasks": _tasks(read, me),
        "service_hours": [
            _row(e, "day", "source_type", "source_id", "kind", "seconds") for e in hours
        ],
        "station_visits": [_row(v, "station_id", "visited_at") for v in visits],
        "notifications": [
            {
                **_row(n, "id", "kind", "subject_type", "subject_id", "created_at", "read_at"),
                "data": n.data,
            }
            for n in notes
        ],
        "access_log": [{key: _iso(value) for key, value in a._mapping.items()} for a in accesses],
        "limits": {"items_per_section": SECTION_LIMIT, "checkins": CHECKIN_LIMIT},
        "truncated": read.truncated,
    }
    audit.record(
        session,
        "account.data_copied",
        actor=user,
        object_type="user",
        object_ids=[me],
        details={"truncated": read.truncated},
    )
    return document
