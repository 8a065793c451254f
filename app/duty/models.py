"""Volunteers on duty."""

from __future__ import annotations

import datetime as dt
import uuid

from geoalchemy2 import Geography, Geometry
from sqlalchemy import Computed, DateTime, ForeignKey, Index, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db


class DutyStatus(db.Model):
    """A volunteer on duty (the row exists only while they are). The position is kept only
    with the location-sharing consent, only the latest one, and only for DUTY_POSITION_MINUTES:
    a job erases stale ones; going off duty or withdrawing consent erases it at once."""

    __tablename__ = "duty_status"
    __table_args__ = (
        Index(
            "ix_duty_status_geog",
            "geog",
            postgresql_using="gist",
            postgresql_where=text("geom IS NOT NULL"),
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    since: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)
    geog = mapped_column(
        Geography("POINT", srid=4326, spatial_index=False),
        Computed("geom::geography", persisted=True),
    )
    position_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
