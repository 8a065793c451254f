"""Tips: submission, the follow view for anonymous tipsters, staff triage as a state machine,
duplicates and merging, and notifications to named reporters."""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import secrets
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from geoalchemy2 import WKTElement
from sqlalchemy import Select, Text, and_, func, or_, select, update
from sqlalchemy.orm import Session

from app.areas.models import Area, AreaLevel
from app.areas.service import AreaPath, get_area, resolve_path
from app.auth.jurisdiction import (
    in_jurisdiction,
    jurisdiction_of,
    require_inside,
    within_area,
)
from app.auth.models import User
from app.core import audit
from app.core.auth import GRID_STAFF, has_any_role
from app.core.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    Unauthorized,
    Unprocessable,
    field_error,
)
from app.core.i18n import N_, _
from app.media import service as media_service
from app.media.models import Media
from app.tips.models import OPEN_STATUSES, PUBLIC_CATEGORIES, Tip, TipCategory, TipEvent
from geo.cells import h3_cells
from notifications.service import notify

# A place outside every area still reaches staff: those of the nearest district within this.
NEAREST_DISTRICT_M = 50_000
# Codes: Crockford's alphabet (no I, L, O, U), 10 characters = 50 bits.
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# The workflow. `merged` is reached only by merging; `referred_to_police` ends the staff's part
# (police outcomes come back through the clue-batch feedback).
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "submitted": frozenset({"triaged", "rejected", "referred_to_police"}),
    "triaged": frozenset({"assigned", "in_progress", "resolved", "rejected", "referred_to_police"}),
    "assigned": frozenset({"triaged", "in_progress", "resolved", "rejected", "referred_to_police"}),
    "in_progress": frozenset({"assigned", "resolved", "rejected", "referred_to_police"}),
    "resolved": frozenset({"triaged"}),  # reopened
    "rejected": frozenset({"triaged"}),  # reopened
    "referred_to_police": frozenset(),
    "merged": frozenset(),
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- codes and secrets ---------------------------------------------------------------------------


def new_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))


def follow_secret(tip_id: uuid.UUID, follow_key: str) -> str:
    """The anonymous tipster's secret: an HMAC of the tip id under `follow_key`
    (TIP_FOLLOW_KEY; 120 bits).

    Derived, not stored: the database (and the idempotency record of the submission) never
    holds it, and a replayed submission can still hand it back to the phone that lost the
    first answer."""
    mac = hmac.new(follow_key.encode(), b"tip-follow:" + tip_id.bytes, "sha256").digest()
    return base64.b32encode(mac[:15]).decode().rstrip("=")


def _secret_matches(tip: Tip, secret: str | None, follow_key: str) -> bool:
    if not secret or not tip.anonymous:
        return False
    expected = follow_secret(tip.id, follow_key)
    return hmac.compare_digest(expected.encode(), secret.strip().upper().encode())


# -- categories ----------------------------------------------------------------------------------


def categories(session: Session, *, include_inactive: bool = False) -> list[TipCategory]:
    query = select(TipCategory).order_by(TipCategory.sort_order, TipCategory.code)
    if not include_inactive:
        query = query.where(TipCategory.active)
    return list(session.scalars(query))


def create_category(session: Session, values: dict[str, Any]) -> TipCategory:
    if session.get(TipCategory, values["code"]) is not None:
        raise Conflict(_("A category with this code exists."))
    category = TipCategory(**values)
    session.add(category)
    session.flush()
    session.refresh(category)
    return category


def update_category(session: Session, code: str, values: dict[str, Any]) -> TipCategory:
    category = session.get(TipCategory, code)
    if category is None:
        raise NotFound(_("No such category."))
    for key, value in values.items():
        setattr(category, key, value)
    session.flush()
    return category


def _active_category(session: Session, code: str, pointer: str = "/category") -> TipCategory:
    category = session.get(TipCategory, code)
    if category is None or not category.active:
        raise field_error(pointer, _("No such category: see GET /api/v1/tip-categories."))
    return category


# -- submission ----------------------------------------------------------------------------------


def _place(session: Session, lon: float, lat: float) -> tuple[AreaPath, bool]:
    """The area path of a place; outside every area, the nearest district (within 50 km), so
    that the tip reaches district staff instead of nobody."""
    path = resolve_path(session, lon, lat)
    if path.district_id is not None:
        return path, False
    point = func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)
    nearest = session.scalar(
        select(Area.id)
        .where(
            Area.level == AreaLevel.DISTRICT,
            func.ST_DWithin(func.geography(Area.geom), func.geography(point), NEAREST_DISTRICT_M),
        )
        .order_by(func.ST_Distance(func.geography(Area.geom), func.geography(point)))
        .limit(1)  # pragma: no mutate - scalar() takes the first row; this saves reading more
    )
    return AreaPath(district_id=nearest), True


def _sole_district(session: Session) -> uuid.UUID | None:
    # Two tell "one" from "more than one" (any larger limit answers the same).
    districts = select(Area.id).where(Area.level == AreaLevel.DISTRICT)
    ids = session.scalars(districts.limit(2)).all()  # pragma: no mutate
    if len(ids) != 1:
        return None
    (sole,) = ids
    return sole


def submit(
    session: Session, reporter: User | None, values: dict[str, Any], uploader: User | None = None
) -> Tip:
    """Store a tip. `reporter` is None for an anonymous one, and then nothing about the sender
    is kept anywhere. `uploader` is the account whose photos may be attached (the token's, even
    for an anonymous tip: the link is then dropped from the photos)."""
    category = _active_category(session, values["category"])
    location = values.get("location")
    if location is None and not values.get("address_text"):
        raise field_error("/location", _("Give a location, an address, or both."))

    tip = Tip(
        id=uuid.uuid4(),
        code=new_code(),
        category_code=category.code,
        description=values["description"],
        address_text=values.get("address_text"),
        occurred_at=values.get("occurred_at"),
        status="submitted",
        priority=category.default_priority,
        anonymous=reporter is None,
        reporter_id=reporter.id if reporter else None,
        police_contact_consent=bool(reporter and values.get("police_contact_consent")),
    )
    if location is not None:
        lon, lat = location["lon"], location["lat"]
        tip.geom = WKTElement(f"POINT({lon!r} {lat!r})", srid=4326)
        tip.accuracy_m = location.get("accuracy_m")
        path, tip.outside_areas = _place(session, lon, lat)
        for key, value in path.as_dict().items():
            setattr(tip, key, value)
        for key, value in h3_cells(lon, lat).items():
            setattr(tip, key, value)
    elif reporter is not None and reporter.home_community_id is not None:
        # An address without a point: the named reporter's community is the best guess.
        for key, value in get_area(session, reporter.home_community_id).path_ids.items():
            setattr(tip, key, value)
    else:
        tip.district_id = _sole_district(session)
    session.add(tip)
    session.flush()
    media_service.attach(
        session,
        values.get("media_ids", []),
        tip.id,
        owner=reporter or uploader,
        anonymous=tip.anonymous,
    )
    session.add(TipEvent(tip_id=tip.id, kind="submitted", to_status="submitted", public=True))
    session.flush()
    return tip


# "Is this what you saw?" answers in bands, never to the metre, so that repeated questions
# from chosen points cannot trilaterate a tip (and perhaps its reporter's door).
DISTANCE_BANDS_M = (50, 100, 250, 500, 1000, 2500, 5000)


def nearby_open(
    session: Session, lon: float, lat: float, category_code: str, *, signed_in: bool, limit: int = 5
) -> list[dict[str, Any]]:
    """Open tips of a category within its duplicate radius and window, nearest first: what the
    app shows as "is this what you saw?". Only category, status, the hour and a distance band
    leave the server: no id, no description, no position, no reporter. Categories about people
    (not in PUBLIC_CATEGORIES) are answered to signed-in volunteers only."""
    category = session.get(TipCategory, category_code)
    if category is None:
        raise Unprocessable(
            _("No such category."),
            extra={"errors": [{"location": "query", "pointer": "/category", "detail": "Unknown."}]},
        )
    if category.code not in PUBLIC_CATEGORIES and not signed_in:
        raise Unauthorized(_("Sign in to check for similar tips of this category."))
    point = func.geography(func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326))
    distance = func.ST_Distance(Tip.geog, point)
    rows = session.execute(
        select(Tip.category_code, Tip.status, Tip.created_at, distance.label("distance"))
        .where(
            Tip.category_code == category.code,
            Tip.status.in_(OPEN_STATUSES),
            # The database's clock, which set created_at: the app host's may differ.
            Tip.created_at > func.now() - dt.timedelta(hours=category.duplicate_window_hours),
            func.ST_DWithin(Tip.geog, point, category.duplicate_radius_m),
        )
        .order_by(distance, Tip.id)
        .limit(limit)
    ).all()
    return [
        {
            "category": row.category_code,
            "status": row.status,
            "hour": row.created_at.replace(minute=0, second=0, microsecond=0),
            "within_m": next((b for b in DISTANCE_BANDS_M if row.distance <= b), None),
        }
        for row in rows
    ]


# -- reading -------------------------------------------------------------------------------------


def listing_columns() -> list:
    """The columns of a tip as TipSchema names them, for the staff list written without ORM
    objects or marshmallow (app/core/fastjson.py): ids as text, the position as two numbers
    (WGS-84, None without one; no WKB decoded, no shapely per row)."""
    return [
        Tip.id.cast(Text).label("id"),
        Tip.code,
        Tip.category_code.label("category"),
        Tip.description,
        Tip.address_text,
        func.ST_X(Tip.geom).label("lon"),
        func.ST_Y(Tip.geom).label("lat"),
        Tip.accuracy_m,
        Tip.occurred_at,
        Tip.status,
        Tip.priority,
        Tip.anonymous,
        Tip.assignee_id.cast(Text).label("assignee_id"),
        Tip.merged_into_id.cast(Text).label("merged_into_id"),
        Tip.outside_areas,
        Tip.district_id.cast(Text).label("district_id"),
        Tip.subdistrict_id.cast(Text).label("subdistrict_id"),
        Tip.community_id.cast(Text).label("community_id"),
        Tip.grid_cell_id.cast(Text).label("grid_cell_id"),
        Tip.created_at,
        Tip.status_changed_at,
        Tip.public_summary,
        Tip.public_summary_at,
        Tip.version,
    ]


def staff_query(actor: User, filters: Mapping[str, Any], columns: Sequence | None = None) -> Select:
    """Tips inside the actor's jurisdiction matching the list filters, newest first (stable);
    rows hold the Tip, or `columns` (`listing_columns()`)."""
    query = select(*(columns or (Tip,))).where(in_jurisdiction(actor, Tip))
    if filters.get("status"):
        query = query.where(Tip.status.in_(filters["status"]))
    if filters.get("category"):
        query = query.where(Tip.category_code.in_(filters["category"]))
    if filters.get("priority"):
        query = query.where(Tip.priority.in_(filters["priority"]))
    if filters.get("from_") is not None:
        query = query.where(Tip.created_at >= filters["from_"])
    if filters.get("to") is not None:
        query = query.where(Tip.created_at < filters["to"])
    if filters.get("area_id") is not None:
        query = query.where(within_area(Tip, filters["area_id"]))
    if filters.get("bbox") is not None:
        # `intersects` is `&&` (boxes, SRIDs not compared): another SRID number changes no answer.
        envelope = func.ST_MakeEnvelope(*filters["bbox"], 4326)  # pragma: no mutate
        query = query.where(Tip.geom.intersects(envelope))
    if filters.get("q"):
        pattern = "%" + filters["q"].replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        query = query.where(
            or_(Tip.description.ilike(pattern + "%"), Tip.address_text.ilike(pattern + "%"))
        )
    if filters.get("anonymous") is not None:
        query = query.where(Tip.anonymous == filters["anonymous"])
    return query.order_by(Tip.created_at.desc(), Tip.id.desc())


def get_for_staff(session: Session, actor: User, tip_id: uuid.UUID, *, lock: bool = False) -> Tip:
    query = select(Tip).where(Tip.id == tip_id)
    if lock:
        query = query.with_for_update()
    tip = session.scalar(query)
    if tip is None:
        raise NotFound(_("No such tip."))
    require_inside(actor, tip.path_ids, N_("tip"))
    return tip


def get_own(session: Session, reporter: User, tip_id: uuid.UUID) -> Tip:
    tip = session.get(Tip, tip_id)
    if tip is None or tip.reporter_id != reporter.id:
        raise NotFound(_("No such tip."))
    return tip


def own_query(reporter: User) -> Select:
    return (
        select(Tip)
        .where(Tip.reporter_id == reporter.id)
        .order_by(Tip.created_at.desc(), Tip.id.desc())
    )


def follow(session: Session, code: str, secret: str | None, *, follow_key: str) -> Tip:
    """An anonymous tip by its code and secret. Unknown code and wrong secret answer alike."""
    tip = session.scalar(select(Tip).where(Tip.code == code.strip().upper()))
    if tip is None or not _secret_matches(tip, secret, follow_key):
        raise NotFound(_("No tip with this code and secret."))
    return tip


def effective(session: Session, tip: Tip) -> Tip:
    """The tip whose workflow a reporter follows: the one it was merged into, if it was."""
    seen = {tip.id}
    while tip.merged_into_id is not None:
        tip = session.get(Tip, tip.merged_into_id)
        if tip.id in seen:  # pragma: no cover, no mutate - merge makes no cycles, no chains
            break  # pragma: no mutate - (the guard above: never reached)
        seen.add(tip.id)
    return tip


# Lines of a surviving tip that the reporters of tips merged into it may see: staff's and the
# police's, never another reporter's own words (`info_added`, `submitted`).
_SHARED_KINDS = ("transition", "note", "police_outcome")


def public_history(session: Session, tip: Tip) -> list[TipEvent]:
    """What a reporter sees: their tip's public lines, and the public staff lines of the tip it
    was merged into."""
    target = effective(session, tip)
    own = and_(TipEvent.tip_id == tip.id, TipEvent.public)
    shared = and_(TipEvent.tip_id == target.id, TipEvent.public, TipEvent.kind.in_(_SHARED_KINDS))
    condition = own if target.id == tip.id else or_(own, shared)
    return list(
        session.scalars(select(TipEvent).where(condition).order_by(TipEvent.at, TipEvent.id))
    )


def public_events(session: Session, tip_ids: Sequence[uuid.UUID]) -> list[TipEvent]:
    """The public lines of many unmerged tips, in order (their reporters' history)."""
    return list(
        session.scalars(
            select(TipEvent)
            .where(TipEvent.tip_id.in_(tip_ids), TipEvent.public)
            .order_by(TipEvent.at, TipEvent.id)
        )
    )


def history(session: Session, tip: Tip) -> list[TipEvent]:
    return list(
        session.scalars(
            select(TipEvent).where(TipEvent.tip_id == tip.id).order_by(TipEvent.at, TipEvent.id)
        )
    )


def media_of(session: Session, tip_ids: Sequence[uuid.UUID]) -> list[Media]:
    return list(
        session.scalars(
            select(Media).where(Media.tip_id.in_(tip_ids)).order_by(Media.created_at, Media.id)
        )
    )


def duplicates(session: Session, actor: User, tip: Tip) -> dict[str, list[Tip]]:
    """Tips merged into this one, and candidates: same category, not merged, within the
    category's radius and window around this tip; only those inside the actor's jurisdiction."""
    inside = in_jurisdiction(actor, Tip)
    merged = list(
        session.scalars(
            select(Tip).where(Tip.merged_into_id == tip.id, inside).order_by(Tip.created_at)
        )
    )
    candidates: list[Tip] = []
    if tip.geom is not None and tip.merged_into_id is None:
        category = session.get(TipCategory, tip.category_code)
        window = dt.timedelta(hours=category.duplicate_window_hours)
        own_position = select(Tip.geog).where(Tip.id == tip.id).scalar_subquery()
        candidates = list(
            session.scalars(
                select(Tip)
                .where(
                    inside,
                    Tip.id != tip.id,
                    Tip.category_code == tip.category_code,
                    Tip.status != "merged",
                    Tip.created_at.between(tip.created_at - window, tip.created_at + window),
                    func.ST_DWithin(Tip.geog, own_position, category.duplicate_radius_m),
                )
                .order_by(Tip.created_at)
                .limit(20)
            )
        )
    return {"merged": merged, "candidates": candidates}


# -- workflow ------------------------------------------------------------------------------------


def _notify_reporters(session: Session, tip: Tip, kind: str, data: dict[str, Any]) -> None:
    """A notification, pushed to their phones, for each named reporter of this tip and of
    tips merged into it."""
    reporters = session.execute(
        select(Tip.id, Tip.reporter_id).where(
            or_(Tip.id == tip.id, Tip.merged_into_id == tip.id), Tip.reporter_id.is_not(None)
        )
    ).all()
    for own_tip_id, reporter_id in reporters:
        notify(session, [reporter_id], kind, "tip", own_tip_id, {**data, "tip_id": str(own_tip_id)})


def _assignee(session: Session, tip: Tip, assignee_id: uuid.UUID | None) -> uuid.UUID:
    if assignee_id is None:
        raise field_error("/assignee_id", _("Say whom the tip is assigned to."))
    user = session.get(User, assignee_id)
    if (
        user is None
        or user.status != "active"
        or not has_any_role(user.roles, [GRID_STAFF])
        or not jurisdiction_of(user).covers(tip.path_ids)
    ):
        raise field_error("/assignee_id", _("No such staff member for this tip's area."))
    return user.id


def transition(
    session: Session,
    actor: User,
    tip: Tip,
    to: str,
    *,
    note: str | None = None,
    public: bool,
    assignee_id: uuid.UUID | None = None,
) -> Tip:
    """Move a tip along the workflow; illegal moves are a 409 that names the legal ones.
    `public`: whether the tip's reporter sees the line (and its note): every caller says."""
    allowed = TRANSITIONS[tip.status]
    if to not in allowed:
        legal = ", ".join(sorted(allowed)) or "none"
        raise InvalidTransition(
            _(
                "A %(status)s tip cannot become %(to)s (from %(status)s: %(legal)s).",
                status=tip.status,
                to=to,
                legal=legal,
            )
        )
    if to == "assigned":
        tip.assignee_id = _assignee(session, tip, assignee_id)
    elif assignee_id is not None:
        raise field_error("/assignee_id", _("Only a move to assigned takes an assignee."))
    session.add(
        TipEvent(
            tip_id=tip.id,
            kind="transition",
            actor_id=actor.id,
            from_status=tip.status,
            to_status=to,
            note=note,
            public=public,
            data={"assignee_id": str(tip.assignee_id)} if to == "assigned" else {},
        )
    )
    tip.status = to
    tip.status_changed_at = _now()
    _notify_reporters(session, tip, "tip_status", {"status": to, "note": note if public else None})
    session.flush()
    return tip


def edit(session: Session, actor: User, tip: Tip, values: dict[str, Any]) -> Tip:
    """Staff corrections: priority and category (recorded in the history)."""
    changes: dict[str, list[str]] = {}
    if "category" in values and values["category"] != tip.category_code:
        category = _active_category(session, values["category"])
        changes["category"] = [tip.category_code, category.code]
        tip.category_code = category.code
    if "priority" in values and values["priority"] != tip.priority:
        changes["priority"] = [tip.priority, values["priority"]]
        tip.priority = values["priority"]
    if changes:
        session.add(TipEvent(tip_id=tip.id, kind="edited", actor_id=actor.id, data=changes))
        session.flush()
    return tip


def set_public_summary(session: Session, actor: User, tip: Tip, summary: str | None) -> Tip:
    """Approve (or, with None, withdraw) what Open311 publishes about a tip: a summary in
    staff's words. The tipster's description and address are never published, anonymous tip
    or not (FixMyStreet moderates what it shows the same way). Only tips Open311 lists may
    have one: a confidential category or a merged tip is a 409. Recorded in the tip's staff
    history and on the audit trail; the tip's version (its ETag) moves."""
    if summary is not None and (
        tip.category_code not in PUBLIC_CATEGORIES or tip.status == "merged"
    ):
        raise Conflict(
            _(
                "This tip is never published (a confidential category, or merged): "
                "it has no public summary."
            )
        )
    if summary == tip.public_summary:
        return tip
    session.add(
        TipEvent(
            tip_id=tip.id,
            kind="edited",
            actor_id=actor.id,
            data={"public_summary": [tip.public_summary, summary]},
        )
    )
    tip.public_summary = summary
    tip.public_summary_by = actor.id if summary is not None else None
    tip.public_summary_at = _now() if summary is not None else None
    audit.record(
        session,
        "tip.public_summary_approved" if summary is not None else "tip.public_summary_withdrawn",
        actor=actor,
        object_type="tip",
        object_ids=[tip.id],
    )
    session.flush()
    return tip


def add_note(session: Session, actor: User, tip: Tip, note: str, public: bool) -> TipEvent:
    event = TipEvent(tip_id=tip.id, kind="note", actor_id=actor.id, note=note, public=public)
    session.add(event)
    if public:
        _notify_reporters(session, tip, "tip_note", {"note": note})
    session.flush()
    return event


def merge(session: Session, actor: User, tip: Tip, target_id: uuid.UUID) -> Tip:
    """Merge `tip` into the tip `target_id` (both inside the actor's jurisdiction). The merged
    tip keeps its code, photos and reporter; its reporter then follows the target's workflow."""
    if target_id == tip.id:
        raise field_error("/into", _("A tip cannot be merged into itself."))
    target = session.scalar(select(Tip).where(Tip.id == target_id).with_for_update())
    if target is None or not jurisdiction_of(actor).covers(target.path_ids):
        raise field_error("/into", _("No such tip in your jurisdiction."))
    if tip.status == "merged":
        raise InvalidTransition(_("This tip is already merged."))
    if tip.status not in OPEN_STATUSES:
        raise InvalidTransition(
            _("A %(status)s tip is closed; only open tips are merged.", status=tip.status)
        )
    if target.status == "merged":
        raise field_error(
            "/into", _("That tip is itself merged; merge into the tip it was merged into.")
        )
    # Tips already merged into this one follow it to the new target (no chains).
    session.execute(
        update(Tip)
        .where(Tip.merged_into_id == tip.id)
        .values(merged_into_id=target.id, version=Tip.version + 1)
    )
    session.add_all(
        [
            TipEvent(
                tip_id=tip.id,
                kind="merged",
                actor_id=actor.id,
                from_status=tip.status,
                to_status="merged",
                public=True,
                data={"into": str(target.id)},
            ),
            TipEvent(
                tip_id=target.id, kind="merged", actor_id=actor.id, data={"from": str(tip.id)}
            ),
        ]
    )
    tip.status = "merged"
    tip.merged_into_id = target.id
    tip.status_changed_at = _now()
    session.flush()
    return tip


def add_information(
    session: Session,
    tip: Tip,
    text: str,
    media_ids: Sequence[uuid.UUID],
    reporter: User | None,
) -> TipEvent:
    """The reporter adds to their tip (more text, more photos) while it is still open."""
    target = effective(session, tip)
    if target.status not in OPEN_STATUSES:
        raise InvalidTransition(_("This tip is closed; submit a new tip instead."))
    media_service.attach(session, media_ids, tip.id, owner=reporter, anonymous=tip.anonymous)
    event = TipEvent(
        tip_id=tip.id,
        kind="info_added",
        note=text,
        public=True,
        data={"media_ids": [str(m) for m in media_ids]},
    )
    session.add(event)
    session.flush()
    return event
