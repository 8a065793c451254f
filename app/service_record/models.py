"""Credited service time, one row per volunteer, source and local day."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db

SOURCE_TYPES = ("patrol", "task")


class ServiceEntry(db.Model):
    """Seconds of service a source (a patrol, a task completed) credits to a volunteer on one
    local day (SERVICE_TIMEZONE). The daily cap is applied when the record is read, across
    sources, so a source's entries are simply rewritten when it is summarised again."""

    __tablename__ = "service_entries"
    __table_args__ = (
        UniqueConstraint(
            "volunteer_id", "source_type", "source_id", "day", name="uq_service_entries_source_day"
        ),
        CheckConstraint("source_type IN ('patrol', 'task')", name="source_type"),
        CheckConstraint("seconds >= 0", name="seconds"),
        Index("ix_service_entries_volunteer_day", "volunteer_id", "day"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    volunteer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    source_type: Mapped[str] = mapped_column(String(10))
    source_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(40))
    day: Mapped[dt.date] = mapped_column(Date)
    seconds: Mapped[int] = mapped_column(Integer)
