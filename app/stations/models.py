"""Stations and their materialized open periods."""

from __future__ import annotations

import datetime as dt
import secrets
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
    String,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSTZRANGE, Range
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Located, Timestamps, Versioned
from app.extensions import db

STATION_TYPES = (
    "rider_station",
    "volunteer_post",
    "community_service_centre",
    "incubation_centre",
    "police_post",
    "other",
)
AMENITIES = (
    "charging",
    "hot_water",
    "microwave",
    "restroom",
    "rest_area",
    "first_aid_kit",
    "aed",
    "wifi",
    "umbrella",
    "drinking_water",
    "phone_charging_cable",
    "repair_kit",
    "accessible",
)
STATUSES = ("active", "closed")


class Station(Located, Versioned, Timestamps, db.Model):
    """A service location. `geog` is derived from `geom` by the database: nearest-first queries
    order by it (`geog <-> point`, true metres, index-backed)."""

    __tablename__ = "stations"
    __table_args__ = (
        CheckConstraint(
            "type IN ('rider_station', 'volunteer_post', 'community_service_centre', "
            "'incubation_centre', 'police_post', 'other')",
            name="type",
        ),
        CheckConstraint("status IN ('active', 'closed')", name="status"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity"),
        Index("ix_stations_geom", "geom", postgresql_using="gist"),
        Index("ix_stations_geog", "geog", postgresql_using="gist"),
        Index("ix_stations_amenities", "amenities", postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    external_ref: Mapped[str | None] = mapped_column(String(100), unique=True)
    type: Mapped[str] = mapped_column(String(30), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    geog = mapped_column(
        Geography("POINT", srid=4326, spatial_index=False),
        Computed("geom::geography", persisted=True),
    )
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    operator: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(30))
    amenities: Mapped[list[str]] = mapped_column(ARRAY(String(30)), server_default="{}")
    opening_hours: Mapped[dict] = mapped_column(JSONB)
    hours_exceptions: Mapped[list] = mapped_column(JSONB, server_default="[]")
    capacity: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), server_default="active", index=True)
    last_verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    generated: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # Located's path, with the single-column indexes stations had from the start (their lists
    # sort by distance or name, not by a time to pair the path with).
    subdistrict_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    community_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    # What the station's QR code holds: a visit counts only with it, so visits cannot be
    # made up from afar by guessing station ids.
    visit_code: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_urlsafe(16))


class StationOpenPeriod(db.Model):
    """When a station is open, as concrete UTC periods for a rolling window of days: "open now"
    is then an indexed range test inside the nearest-first query, not hours arithmetic per row.
    Rebuilt when a station's hours change, and rolled forward daily by a periodic job."""

    __tablename__ = "station_open_periods"

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), index=True
    )
    during: Mapped[Range[dt.datetime]] = mapped_column(TSTZRANGE)


class StationVisit(db.Model):
    """A scan of a station's QR code: when, and the volunteer only if one was signed in. No
    other personal data (riders scan anonymously)."""

    __tablename__ = "station_visits"
    __table_args__ = (Index("ix_station_visits_station_id_visited_at", "station_id", "visited_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    visited_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    volunteer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
