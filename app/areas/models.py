"""Areas and their subdivided geometry pieces (what point lookups actually test against)."""

from __future__ import annotations

import uuid
from enum import StrEnum

from geoalchemy2 import Geometry
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Timestamps
from app.extensions import db


class AreaLevel(StrEnum):
    DISTRICT = "district"
    SUBDISTRICT = "subdistrict"
    COMMUNITY = "community"
    GRID_CELL = "grid_cell"

    @property
    def depth(self) -> int:
        return list(AreaLevel).index(self) + 1

    @property
    def parent_level(self) -> AreaLevel | None:
        levels = list(AreaLevel)
        index = levels.index(self)
        return levels[index - 1] if index else None


class Area(Timestamps, db.Model):
    """An administrative polygon. `district_id`, `subdistrict_id` and `community_id` are the
    area's own path (itself included), so that jurisdiction checks are equality tests."""

    __tablename__ = "areas"
    __table_args__ = (
        CheckConstraint(
            "level IN ('district', 'subdistrict', 'community', 'grid_cell')", name="level"
        ),
        CheckConstraint("urban_rural IN ('urban', 'rural')", name="urban_rural"),
        Index("ix_areas_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16), index=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("areas.id", ondelete="RESTRICT"), index=True
    )
    district_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    subdistrict_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    community_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    urban_rural: Mapped[str | None] = mapped_column(String(5))
    approximate: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    centre_estimated: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False)
    centre = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)
    source: Mapped[str | None] = mapped_column(String(200))

    @property
    def path_ids(self) -> dict[str, uuid.UUID | None]:
        return {
            "district_id": self.district_id,
            "subdistrict_id": self.subdistrict_id,
            "community_id": self.community_id,
            "grid_cell_id": self.id if self.level == AreaLevel.GRID_CELL else None,
        }


class AreaPiece(db.Model):
    """An area's geometry cut into pieces of at most 128 vertices (ST_Subdivide), kept in step
    by a trigger on `areas`: point-in-polygon tests against small pieces stay fast however
    detailed the outline (the district's has thousands of vertices)."""

    __tablename__ = "area_pieces"
    __table_args__ = (Index("ix_area_pieces_geom", "geom", postgresql_using="gist"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("areas.id", ondelete="CASCADE"), index=True
    )
    depth: Mapped[int] = mapped_column(SmallInteger)
    geom = mapped_column(Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False)
