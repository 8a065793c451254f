"""Clue batches: a frozen list of tips (at their versions) and the files made from it."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db

BATCH_STATUSES = ("pending", "running", "ready", "failed")
OUTCOMES = ("case_opened", "no_action", "false_report", "duplicate")


class ClueBatch(db.Model):
    """Who made it, in which role and for which areas (the scope decides who may download),
    why (purpose, case reference), and the generation's progress and result."""

    __tablename__ = "clue_batches"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'running', 'ready', 'failed')", name="status"),
        CheckConstraint("percent BETWEEN 0 AND 100", name="percent"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    creator_role: Mapped[str] = mapped_column(String(20))
    scope_everywhere: Mapped[bool] = mapped_column(Boolean, server_default="false")
    scope_area_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), server_default="{}")
    purpose: Mapped[str] = mapped_column(Text)
    case_reference: Mapped[str] = mapped_column(String(100))
    filters: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    status: Mapped[str] = mapped_column(String(10), server_default="pending")
    percent: Mapped[int] = mapped_column(Integer, server_default="0")
    row_count: Mapped[int] = mapped_column(Integer, server_default="0")
    files: Mapped[list] = mapped_column(JSONB, server_default="[]")
    digest: Mapped[str | None] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(Text)
    key_id: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    # Made by `flask demo simulate`, not by a person (app/demo/simulate.py).
    generated: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # The platform's copy of the files, deleted BATCH_FILE_DAYS_AFTER_ACK after acknowledgement.
    files_deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ClueBatchItem(db.Model):
    """One tip of a batch, at the version it had when the batch was frozen, and the police's
    outcome about it."""

    __tablename__ = "clue_batch_items"
    __table_args__ = (
        CheckConstraint(
            "outcome IS NULL OR outcome IN ('case_opened', 'no_action', 'false_report', "
            "'duplicate')",
            name="outcome",
        ),
        Index("ix_clue_batch_items_batch_position", "batch_id", "position", unique=True),
    )

    batch_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clue_batches.id", ondelete="CASCADE"), primary_key=True
    )
    tip_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tips.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    tip_version: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String(20))
    outcome_note: Mapped[str | None] = mapped_column(Text)
    outcome_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    outcome_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
