"""Columns many models share."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import DateTime, Integer, Uuid, func
from sqlalchemy.orm import Mapped, declared_attr, mapped_column


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
    """Rows that carry their area path (ARCHITECTURE §3), resolved at write time: the four
    columns jurisdiction checks compare by equality (app/auth/jurisdiction.py: `path_ids` for one
    object, `in_jurisdiction(actor, Model)` for a query).

    Plain, unindexed columns: SQLAlchemy copies a mixin's `mapped_column`s into each table. Each
    model indexes its path in `__table_args__` together with the column its lists sort by (tips by
    `created_at`, tasks by `starts_at`...); a model whose indexes differ redeclares the column
    (stations)."""

    district_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    subdistrict_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    community_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    grid_cell_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    @property
    def path_ids(self) -> dict[str, uuid.UUID | None]:
        return {
            "district_id": self.district_id,
            "subdistrict_id": self.subdistrict_id,
            "community_id": self.community_id,
            "grid_cell_id": self.grid_cell_id,
        }


class Versioned:
    """A `version` bumped by every UPDATE (SQLAlchemy's optimistic lock): the row's ETag, and a
    second line of defence when two staff edits race past If-Match (an UPDATE that finds
    another version raises StaleDataError)."""

    version: Mapped[int] = mapped_column(Integer, server_default="1")

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}
