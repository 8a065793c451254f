"""Columns many models share."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import DateTime, func
from sqlalchemy.orm import Mapped, mapped_column


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """`column IN ('a', 'b')` for a CHECK constraint over a fixed set of our own values."""
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class Timestamps:
    """`created_at` and `updated_at`, set by the database (UTC, timestamptz)."""

    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Located:
    """Rows that carry their area path (ARCHITECTURE §3): `path_ids` is what jurisdiction
    checks take (app/auth/jurisdiction.py)."""

    district_id: uuid.UUID | None
    subdistrict_id: uuid.UUID | None
    community_id: uuid.UUID | None
    grid_cell_id: uuid.UUID | None

    @property
    def path_ids(self) -> dict[str, uuid.UUID | None]:
        return {
            "district_id": self.district_id,
            "subdistrict_id": self.subdistrict_id,
            "community_id": self.community_id,
            "grid_cell_id": self.grid_cell_id,
        }
