"""Pending account deletions, and the anonymous service totals erased volunteers leave."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db


class AccountDeletion(db.Model):
    """A request to delete an account, waiting out its grace period. Signing in cancels it (the
    row goes); the erasure job takes the due ones, and the row goes with the account."""

    __tablename__ = "account_deletions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    erase_after: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    # Staff asked on the person's behalf (who and why is in the audit trail, not here).
    requested_by_staff: Mapped[bool] = mapped_column(Boolean, server_default="false")


class AnonymousServiceTotal(db.Model):
    """Service time of erased volunteers, summed per home community, month and kind across all
    of them: the organisation's statistics keep the hours, no row is one person's."""

    __tablename__ = "anonymous_service_totals"
    __table_args__ = (
        UniqueConstraint(
            "community_id",
            "month",
            "kind",
            name="uq_anonymous_service_totals_place_month_kind",
            postgresql_nulls_not_distinct=True,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    community_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    month: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(40))
    seconds: Mapped[int] = mapped_column(BigInteger)


ARCHIVE_STATUSES = ("pending", "ready", "failed")


class DataArchive(db.Model):
    """A ZIP copy of a person's data with their tips' photos, made by a job; its file lives
    under EXPORT_ROOT/personal/<id>.zip until `expires_at` (or the account's erasure)."""

    __tablename__ = "data_archives"
    __table_args__ = (CheckConstraint("status IN ('pending', 'ready', 'failed')", name="status"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(10), server_default="pending")
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    byte_size: Mapped[int | None] = mapped_column(BigInteger)
