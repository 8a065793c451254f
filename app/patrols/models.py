"""Patrols, their check-ins (a time series partitioned by month), checkpoints, their visits and
the scheduled windows the missed-visit job has judged."""

from __future__ import annotations

import datetime as dt
import secrets
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
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Located, Timestamps, Versioned, sql_in
from app.extensions import db

PATROL_KINDS = ("walk_along", "team_patrol", "checkpoint_tour")
PATROL_STATUSES = ("active", "ended")
# Why a patrol ended: its volunteer ended it, or no fix came for PATROL_IDLE_HOURS.
END_REASONS = ("ended", "idle")
SCAN_METHODS = ("gps", "qr", "nfc")

# Check-in flags (a bit set): kept, but worth a look.
FLAG_POOR_ACCURACY = 1
FLAG_IMPLAUSIBLE_SPEED = 2  # from the previous fix: a likely spoofed position
FLAG_NAMES = {FLAG_POOR_ACCURACY: "poor_accuracy", FLAG_IMPLAUSIBLE_SPEED: "implausible_speed"}


def flag_names(flags: int) -> list[str]:
    return [name for bit, name in FLAG_NAMES.items() if flags & bit]


class Patrol(Located, Timestamps, db.Model):
    """One patrol session. Its area path is where its first fix fell (before any fix: the team's
    area, else the volunteer's home community), so staff find it by equality like every located
    row. The summary (simplified track, distance, credited time) is computed from the raw fixes
    when the patrol ends and again when late fixes arrive; it outlives the fixes' retention."""

    __tablename__ = "patrols"
    __table_args__ = (
        CheckConstraint(sql_in("kind", PATROL_KINDS), name="kind"),
        CheckConstraint(sql_in("status", PATROL_STATUSES), name="status"),
        CheckConstraint("(status = 'ended') = (ended_at IS NOT NULL)", name="ended_has_time"),
        CheckConstraint("kind <> 'team_patrol' OR team_id IS NOT NULL", name="team_patrol_team"),
        # A volunteer walks one patrol at a time.
        Index(
            "uq_patrols_volunteer_active",
            "volunteer_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_patrols_volunteer_started", "volunteer_id", "started_at"),
        Index("ix_patrols_community_started", "community_id", "started_at"),
        Index("ix_patrols_subdistrict_started", "subdistrict_id", "started_at"),
        Index(
            "ix_patrols_active_last_fix", "last_fix_at", postgresql_where=text("status = 'active'")
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    volunteer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(10), server_default="active")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str | None] = mapped_column(String(10))
    # The latest fix by recorded time: the speed check's previous position.
    last_fix_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_lon: Mapped[float | None] = mapped_column(Float)
    last_lat: Mapped[float | None] = mapped_column(Float)
    checkin_count: Mapped[int] = mapped_column(Integer, server_default="0")
    flagged_count: Mapped[int] = mapped_column(Integer, server_default="0")
    visit_count: Mapped[int] = mapped_column(Integer, server_default="0")
    distance_m: Mapped[float] = mapped_column(Float, server_default="0")
    credited_seconds: Mapped[int] = mapped_column(Integer, server_default="0")
    track = mapped_column(Geometry("LINESTRING", srid=4326, spatial_index=False), nullable=True)
    summarised_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Made by `flask demo simulate`, not by a person (app/demo/simulate.py).
    generated: Mapped[bool] = mapped_column(Boolean, server_default="false")


class CheckIn(Located, db.Model):
    """One fix of a patrol. A time series: the table is partitioned by month of `recorded_at`
    (app/patrols/partitions.py makes and drops the partitions), so retention drops partitions.

    Deliberately without foreign keys or a spatial index: every one would be paid per row on the
    hottest write path, and nothing needs them (patrols are never deleted; coverage aggregates
    the stored area ids and H3 cells; tracks are built per patrol). The primary key makes a
    replayed item (same patrol, client id and time) a no-op and finds a patrol's fixes."""

    __tablename__ = "checkins"
    __table_args__ = (
        PrimaryKeyConstraint("patrol_id", "client_id", "recorded_at", name="pk_checkins"),
        Index("ix_checkins_community_recorded", "community_id", "recorded_at"),
        Index("ix_checkins_subdistrict_recorded", "subdistrict_id", "recorded_at"),
        {"postgresql_partition_by": "RANGE (recorded_at)"},
    )

    patrol_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    volunteer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    flags: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    checkpoint_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    scan_method: Mapped[str | None] = mapped_column(String(3))
    # H3 at resolution 9 (~200 m); coarser cells are derived in SQL (geo.cells.parent_constants).
    h3_r9: Mapped[int | None] = mapped_column(BigInteger)


def _new_code_secret() -> str:
    return secrets.token_urlsafe(18)


# Checkpoints have a radius of at most this (the schemas' bound, and a CHECK on the table): the
# index-backed bound of check-in ingest's proximity search.
MAX_CHECKPOINT_RADIUS_M = 1000
MIN_CHECKPOINT_RADIUS_M = 5


class Checkpoint(Located, Versioned, Timestamps, db.Model):
    """A place to be visited: a point and a radius, optionally on a schedule of time windows.

    The QR/NFC code holds `code_secret` (rotatable). A scan counts only with the current code
    *and* a position within the radius: a printed code can be photographed and scanned anywhere.
    """

    __tablename__ = "checkpoints"
    __table_args__ = (
        CheckConstraint("radius_m BETWEEN 5 AND 1000", name="radius"),
        CheckConstraint("min_interval_minutes BETWEEN 0 AND 1440", name="min_interval"),
        Index("ix_checkpoints_geog", "geog", postgresql_using="gist"),
        Index("ix_checkpoints_community", "community_id"),
        Index("ix_checkpoints_subdistrict", "subdistrict_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    geog = mapped_column(
        Geography("POINT", srid=4326, spatial_index=False),
        Computed("geom::geography", persisted=True),
    )
    radius_m: Mapped[int] = mapped_column(Integer, server_default="30")
    # {"timezone": "Asia/Shanghai", "windows": [{"days": [...], "start": "22:00",
    #  "end": "02:00", "expected_visits": 1}]}; null: no schedule.
    # none_as_null: no schedule is SQL NULL (not JSON null), so "scheduled" is IS NOT NULL.
    schedule: Mapped[dict | None] = mapped_column(JSONB(none_as_null=True))
    min_interval_minutes: Mapped[int] = mapped_column(Integer, server_default="10")
    code_secret: Mapped[str] = mapped_column(String(40), default=_new_code_secret)
    code_rotated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    responsible_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # Scheduled windows ending up to here have been judged by the missed-window job.
    windows_judged_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Made by `flask demo simulate`, not by a person (app/demo/simulate.py).
    generated: Mapped[bool] = mapped_column(Boolean, server_default="false")


class CheckpointVisit(db.Model):
    """A counted visit: a fix inside the radius, or a valid scan inside it, at least
    `min_interval_minutes` after the checkpoint's previous counted visit."""

    __tablename__ = "checkpoint_visits"
    __table_args__ = (
        CheckConstraint(sql_in("method", SCAN_METHODS), name="method"),
        Index("ix_checkpoint_visits_checkpoint_visited", "checkpoint_id", "visited_at"),
        Index("ix_checkpoint_visits_visited", "visited_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    checkpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("checkpoints.id", ondelete="CASCADE")
    )
    patrol_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patrols.id", ondelete="CASCADE"), index=True
    )
    volunteer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    visited_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    method: Mapped[str] = mapped_column(String(3))
    distance_m: Mapped[float] = mapped_column(Float)


class CheckpointWindow(db.Model):
    """A scheduled window that has passed, as the missed-window job judged it. A visit synced
    late (an offline phone) still turns a missed window into a visited one."""

    __tablename__ = "checkpoint_windows"
    __table_args__ = (
        UniqueConstraint("checkpoint_id", "starts_at", name="uq_checkpoint_windows_start"),
        CheckConstraint("status IN ('visited', 'missed')", name="status"),
        Index("ix_checkpoint_windows_starts", "starts_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    checkpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("checkpoints.id", ondelete="CASCADE")
    )
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expected_visits: Mapped[int] = mapped_column(SmallInteger)
    visits: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10))
    judged_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
