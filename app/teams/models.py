"""Teams and their members."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    String,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Timestamps
from app.extensions import db

TEAM_KINDS = ("association_branch", "workstation", "community_organisation", "patrol_team")
SERVICE_TYPES = (
    "service",
    "public_welfare",
    "mutual_aid",
    "public_security",
    "mediation",
    "culture",
    "elderly_care",
    "child_care",
    "environment",
    "other",
)
FILING_STATUSES = ("unfiled", "filed", "revoked")
MEMBER_ROLES = ("member", "deputy", "leader")


class Team(Timestamps, db.Model):
    """A volunteer organisation rooted in a community or sub-district (its area path is stored,
    as on every located row, so jurisdiction is an equality test)."""

    __tablename__ = "teams"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('association_branch', 'workstation', 'community_organisation', "
            "'patrol_team')",
            name="kind",
        ),
        CheckConstraint("filing_status IN ('unfiled', 'filed', 'revoked')", name="filing_status"),
        CheckConstraint(
            "(kind = 'community_organisation') = (service_type IS NOT NULL)", name="service_type"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    service_type: Mapped[str | None] = mapped_column(String(30))
    area_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("areas.id", ondelete="RESTRICT"), index=True
    )
    district_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    subdistrict_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    community_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    brand: Mapped[bool] = mapped_column(Boolean, server_default="false")
    filing_status: Mapped[str] = mapped_column(String(10), server_default="unfiled")
    filed_on: Mapped[dt.date | None] = mapped_column(Date)
    revoked_on: Mapped[dt.date | None] = mapped_column(Date)
    leader_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    @property
    def path_ids(self) -> dict[str, uuid.UUID | None]:
        return {
            "district_id": self.district_id,
            "subdistrict_id": self.subdistrict_id,
            "community_id": self.community_id,
            "grid_cell_id": None,
        }


class TeamMember(db.Model):
    """A membership spell: joining and leaving are kept (the service record needs them)."""

    __tablename__ = "team_members"
    __table_args__ = (
        CheckConstraint("role IN ('member', 'deputy', 'leader')", name="role"),
        # One current membership per person and team.
        Index(
            "uq_team_members_current",
            "team_id",
            "user_id",
            unique=True,
            postgresql_where=text("left_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    team_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(10), server_default="member")
    joined_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    left_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
