"""Tips (线索), their categories and their history."""

from __future__ import annotations

import datetime as dt
import uuid

from geoalchemy2 import Geography, Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Located, Timestamps, Versioned, sql_in
from app.extensions import db

PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = (
    "submitted",
    "triaged",
    "assigned",
    "in_progress",
    "resolved",
    "rejected",
    "referred_to_police",
    "merged",
)
OPEN_STATUSES = ("submitted", "triaged", "assigned", "in_progress")
# Categories whose tips may be shown beyond staff (Open311's public list, "is this what you
# saw?" without a token): they are about places and things (rubbish, traffic, illegal
# construction, a blocked fire exit), which neighbours see anyway. Suspicious persons, drugs,
# theft, fraud and disputes point at people: publishing them would expose suspects, victims and
# neighbours and warn whoever is being reported; "other" may be anything.
PUBLIC_CATEGORIES = frozenset(
    {"environment_sanitation", "traffic", "illegal_construction", "fire_hazard"}
)
# `batched`: included in a clue batch; `police_outcome`: the police's answer about it.
EVENT_KINDS = (
    "submitted",
    "transition",
    "note",
    "info_added",
    "merged",
    "edited",
    "batched",
    "police_outcome",
)


class TipCategory(Timestamps, db.Model):
    """What a tip is about. Data, not code: admins add and retire categories."""

    __tablename__ = "tip_categories"
    __table_args__ = (
        CheckConstraint(sql_in("default_priority", PRIORITIES), name="default_priority"),
        CheckConstraint("duplicate_radius_m BETWEEN 10 AND 5000", name="duplicate_radius"),
        CheckConstraint("duplicate_window_hours BETWEEN 1 AND 720", name="duplicate_window"),
    )

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(500))
    default_priority: Mapped[str] = mapped_column(String(10), server_default="normal")
    duplicate_radius_m: Mapped[int] = mapped_column(Integer, server_default="250")
    duplicate_window_hours: Mapped[int] = mapped_column(Integer, server_default="24")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    sort_order: Mapped[int] = mapped_column(Integer, server_default="100")


_OPEN = sql_in("status", OPEN_STATUSES)


class Tip(Located, Versioned, Timestamps, db.Model):
    """A report. Anonymous tips have no reporter and nothing else about their sender: no address,
    no user agent, no device id (ARCHITECTURE §6); the follow secret is derived from the tip id
    with a server key (app/tips/service.py), so the database never holds it."""

    __tablename__ = "tips"
    __table_args__ = (
        CheckConstraint(sql_in("status", STATUSES), name="status"),
        CheckConstraint(sql_in("priority", PRIORITIES), name="priority"),
        CheckConstraint("NOT (anonymous AND reporter_id IS NOT NULL)", name="anonymous_unlinked"),
        CheckConstraint("geom IS NOT NULL OR address_text IS NOT NULL", name="has_place"),
        CheckConstraint(
            "(status = 'merged') = (merged_into_id IS NOT NULL)", name="merged_has_target"
        ),
        # The API bounds it closer (app/core/fields.py); this keeps every writer to times
        # Python reads back in any time zone (1 BC made every list holding the tip fail).
        CheckConstraint(
            "occurred_at BETWEEN '2000-01-01 00:00+00' AND '2100-01-01 00:00+00'",
            name="occurred_at_readable",
        ),
        Index("ix_tips_geog", "geog", postgresql_using="gist"),
        # Staff lists: newest first inside an area, optionally by status.
        Index("ix_tips_community_created", "community_id", "created_at"),
        Index("ix_tips_subdistrict_created", "subdistrict_id", "created_at"),
        Index("ix_tips_district_created", "district_id", "created_at"),
        Index("ix_tips_grid_cell_created", "grid_cell_id", "created_at"),
        Index("ix_tips_created", "created_at"),
        # The console's queue over the whole district filtered by status or by category
        # (bench/bench_console_queue.py): without them the planner walks ix_tips_created
        # through every tip to count the matches (6.5 s among 1,000,000).
        Index("ix_tips_status_created", "status", "created_at"),
        Index("ix_tips_category_created", "category_code", "created_at"),
        Index(
            "ix_tips_open_category",
            "category_code",
            "created_at",
            postgresql_where=_OPEN,
        ),
        # The triage queue (open tips of an area, newest first): measured in
        # bench/bench_tips_list.py, the planner otherwise walks the whole city's open tips.
        Index(
            "ix_tips_open_subdistrict_created",
            "subdistrict_id",
            "created_at",
            postgresql_where=_OPEN,
        ),
        Index(
            "ix_tips_open_community_created",
            "community_id",
            "created_at",
            postgresql_where=_OPEN,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("tip_categories.code"))
    description: Mapped[str] = mapped_column(Text)
    address_text: Mapped[str | None] = mapped_column(String(300))
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    geog = mapped_column(
        Geography("POINT", srid=4326, spatial_index=False),
        Computed("geom::geography", persisted=True),
    )
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    occurred_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20), server_default="submitted")
    priority: Mapped[str] = mapped_column(String(10))
    anonymous: Mapped[bool] = mapped_column(Boolean)
    reporter_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    police_contact_consent: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # Set by the retention job TIP_REPORTER_CONTACT_DAYS_AFTER_CLOSE after the tip closed: staff
    # and batches no longer learn who sent it (the reporter still sees it among their own).
    reporter_contact_expired_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tips.id", ondelete="RESTRICT"), index=True
    )
    # No area contains the place: the tip went to the nearest district's staff.
    outside_areas: Mapped[bool] = mapped_column(Boolean, server_default="false")
    h3_r7: Mapped[int | None] = mapped_column(BigInteger)
    h3_r8: Mapped[int | None] = mapped_column(BigInteger)
    h3_r9: Mapped[int | None] = mapped_column(BigInteger)
    status_changed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # What the world may read about the tip (Open311): a summary in staff's words, published
    # once staff approved it; the tipster's own words never are.
    public_summary: Mapped[str | None] = mapped_column(String(500))
    public_summary_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    public_summary_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Made by `flask demo simulate`, not by a person (app/demo/simulate.py).
    generated: Mapped[bool] = mapped_column(Boolean, server_default="false")


class TipEvent(db.Model):
    """One line of a tip's history: submission, a status change, a note, added information, a
    merge. `public` lines are what the reporter sees (in the follow view and their own tips)."""

    __tablename__ = "tip_events"
    __table_args__ = (
        CheckConstraint(
            sql_in("kind", EVENT_KINDS),
            name="kind",
        ),
        Index("ix_tip_events_tip_at", "tip_id", "at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tip_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tips.id", ondelete="CASCADE"))
    # The clock, not the transaction's start: events of one transaction keep their order.
    at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    kind: Mapped[str] = mapped_column(String(20))
    # Staff who acted; null for the reporter (named or anonymous) and for the system.
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    public: Mapped[bool] = mapped_column(Boolean, server_default="false")
    data: Mapped[dict] = mapped_column(JSONB, server_default="{}")
