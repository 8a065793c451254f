"""Stored photos: one row per upload, re-encoded and stripped (app/media/images.py)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db


class Media(db.Model):
    """A photo. Unattached uploads expire (`expires_at`, a job deletes them); attaching one to a
    tip, or to a volunteer's completion of a task, clears `expires_at`; attaching it to an
    anonymous tip also clears `owner_id`, so nothing links an anonymous tip to an account
    through its photos."""

    __tablename__ = "media"
    __table_args__ = (
        CheckConstraint(
            "(tip_id IS NULL AND task_id IS NULL) = (expires_at IS NOT NULL)",
            name="attached_or_expiring",
        ),
        CheckConstraint("tip_id IS NULL OR task_id IS NULL", name="one_owner_object"),
        Index("ix_media_expires_at", "expires_at", postgresql_where="expires_at IS NOT NULL"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    tip_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tips.id", ondelete="CASCADE"), index=True
    )
    # A task's completion photo (the volunteer who completed it is `owner_id`).
    task_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), index=True
    )
    content_type: Mapped[str] = mapped_column(String(30))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200))
    thumbnail_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
