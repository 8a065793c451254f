"""Tasks, who they were sent to and what each answered."""

from __future__ import annotations

import datetime as dt
import uuid

from geoalchemy2 import Geography, Geometry
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    Uuid,
    case,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Located, Timestamps, Versioned, sql_in
from app.extensions import db

TASK_KINDS = ("patrol", "event_support", "tip_check", "urgent_assist", "publicity")
TARGETING_MODES = ("radius", "area", "team", "named")
TASK_STATUSES = ("open", "cancelled")  # stored; the lifecycle below is read from the row
LIFECYCLE = ("open", "filled", "completed", "expired", "cancelled")
RESPONSES = ("accepted", "declined", "arrived", "completed")


MAX_RADIUS_M = 20_000  # a task's radius, and how far widening may go
WIDEN_AFTER_S = 120  # radius tasks widen when too few accepted by then, unless told otherwise


class Task(Located, Versioned, Timestamps, db.Model):
    """A request to volunteers. `accepted` counts volunteers engaged (accepted, arrived or
    completed; never above `needed`) and `completed` those who completed, both kept under the
    task's row lock. The stored `status` is open or cancelled; the lifecycle a dispatcher reads
    (`lifecycle`, `lifecycle_clause`) follows from the row and the clock, so no job has to
    move a task to "expired" on time."""

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(sql_in("kind", TASK_KINDS), name="kind"),
        CheckConstraint(sql_in("status", TASK_STATUSES), name="status"),
        CheckConstraint(sql_in("targeting_mode", TARGETING_MODES), name="targeting_mode"),
        CheckConstraint("needed BETWEEN 1 AND 10000", name="needed"),
        CheckConstraint("accepted BETWEEN 0 AND needed", name="accepted"),
        CheckConstraint("completed BETWEEN 0 AND accepted", name="completed"),
        CheckConstraint("ends_at > starts_at", name="window"),
        # The API bounds them closer (app/core/fields.py); this keeps every writer to times
        # Python reads back in any time zone (the year 10000 made the task unreadable).
        CheckConstraint(
            "starts_at >= '2000-01-01 00:00+00' AND ends_at < '2100-01-01 00:00+00'",
            name="times_readable",
        ),
        CheckConstraint("targeting_mode <> 'radius' OR geom IS NOT NULL", name="radius_has_place"),
        Index("ix_tasks_geog", "geog", postgresql_using="gist"),
        Index("ix_tasks_community_starts", "community_id", "starts_at"),
        Index("ix_tasks_subdistrict_starts", "subdistrict_id", "starts_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), server_default="open")
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)
    geog = mapped_column(
        Geography("POINT", srid=4326, spatial_index=False),
        Computed("geom::geography", persisted=True),
    )
    radius_m: Mapped[int | None] = mapped_column(Integer)
    area_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"))
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    needed: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer, server_default="0")
    completed: Mapped[int] = mapped_column(Integer, server_default="0")
    skills: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default="{}")
    tip_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tips.id", ondelete="SET NULL"), index=True
    )
    targeting_mode: Mapped[str] = mapped_column(String(10))
    # {team_id, volunteer_ids, max_recipients, widen_after_s, max_radius_m}
    targeting: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    phase: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    # Made by `flask demo simulate`, not by a person (app/demo/simulate.py).
    generated: Mapped[bool] = mapped_column(Boolean, server_default="false")

    def lifecycle(self, now: dt.datetime) -> str:
        """cancelled; completed (the needed volunteers completed); expired (`ends_at` passed
        first); filled (enough accepted); else open. As `lifecycle_clause` says in SQL."""
        if self.status == "cancelled":
            return "cancelled"
        if self.completed >= self.needed:
            return "completed"
        if self.ends_at <= now:
            return "expired"
        if self.accepted >= self.needed:
            return "filled"
        return "open"

    @classmethod
    def lifecycle_clause(cls, now: dt.datetime):
        """`lifecycle` as a SQL expression, for filters."""
        return case(
            (cls.status == "cancelled", "cancelled"),
            (cls.completed >= cls.needed, "completed"),
            (cls.ends_at <= now, "expired"),
            (cls.accepted >= cls.needed, "filled"),
            else_="open",
        )


class TaskRecipient(db.Model):
    """A volunteer the task was sent to (only they may answer it), in which widening phase, and
    their answer so far."""

    __tablename__ = "task_recipients"
    __table_args__ = (
        PrimaryKeyConstraint("task_id", "user_id", name="pk_task_recipients"),
        CheckConstraint("response IS NULL OR " + sql_in("response", RESPONSES), name="response"),
        Index("ix_task_recipients_user_notified", "user_id", "notified_at"),
    )

    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    phase: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    distance_m: Mapped[float | None] = mapped_column(db.Float)
    notified_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    response: Mapped[str | None] = mapped_column(String(10))
    responded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    arrived_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    media_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), server_default="{}")
