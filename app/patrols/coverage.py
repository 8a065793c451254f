"""Patrol coverage for staff: where the neighbourhood was watched, and where it was not.

Aggregates read the area ids and the H3 cell stored on every check-in (indexed equality and
GROUP BY), never a spatial join against the raw fixes. Patrol minutes in a cell are the gaps
between a patrol's consecutive plausible fixes there, each counted up to
SERVICE_MAX_GAP_MINUTES (the rule service hours use).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from shapely import wkb
from sqlalchemy import ColumnElement, func, literal, select, true
from sqlalchemy.orm import Session
from sqlalchemy.types import BigInteger

from app.areas.models import Area, AreaLevel
from app.areas.service import get_area
from app.auth.jurisdiction import (
    PATH_KEYS,
    Jurisdiction,
    area_path_columns,
    jurisdiction_of,
    path_columns,
)
from app.auth.models import User
from app.core.errors import Unprocessable
from app.core.i18n import _
from app.patrols.models import FLAG_IMPLAUSIBLE_SPEED, CheckIn
from geo.cells import cell_geojson, cells_covering, from_bigint, parent_constants
from geo.crs import from_wgs84, geometry_from_wgs84
from geo.geojson import feature, feature_collection

MAX_CELLS = 20_000
LOOKBACK = dt.timedelta(days=30)  # how far back gaps look for a cell's last patrol
_KEY_OF_LEVEL = dict(zip(AreaLevel, PATH_KEYS, strict=True))


def in_area(columns: dict[str, ColumnElement], area: Area | None) -> ColumnElement[bool]:
    """Rows inside `area`: one equality on the column of its level (so its index serves)."""
    if area is None:
        return true()
    return columns[_KEY_OF_LEVEL[AreaLevel(area.level)]] == area.id


def hex_cell(column: ColumnElement, res: int, stored_res: int = 9) -> ColumnElement:
    """The H3 cell at `res` of a stored one at `stored_res` (its parent, derived in SQL)."""
    if res == stored_res:
        return column
    mask, bits = parent_constants(res)
    return column.bitwise_and(literal(mask, BigInteger)).bitwise_or(literal(bits, BigInteger))


def scope(session: Session, user: User, area_id: uuid.UUID | None):
    area = get_area(session, area_id) if area_id else None
    return jurisdiction_of(user), area


def _fix_conditions(jurisdiction: Jurisdiction, area: Area | None) -> list[ColumnElement[bool]]:
    columns = path_columns(CheckIn)
    return [
        jurisdiction.clause(columns),
        in_area(columns, area),
        CheckIn.flags.bitwise_and(FLAG_IMPLAUSIBLE_SPEED) == 0,
    ]


def _cell_column(kind: str, res: int) -> ColumnElement:
    return CheckIn.grid_cell_id if kind == "admin" else hex_cell(CheckIn.h3_r9, res)


def cell_id(kind: str, cell: Any) -> str:
    return str(cell) if kind == "admin" else from_bigint(cell)


def geometries(session: Session, kind: str, cells: list, crs: str) -> dict[Any, tuple]:
    """(geometry, name) of each cell: grid-cell outlines from `areas`, hexagons from H3."""
    if kind == "hex":
        convert = None if crs == "wgs84" else (lambda lon, lat: from_wgs84(lon, lat, crs))
        return {c: (cell_geojson(c, convert), None) for c in cells}
    rows = session.execute(
        select(Area.id, Area.name, func.ST_AsBinary(Area.geom)).where(Area.id.in_(cells))
    )
    return {
        area_id: (geometry_from_wgs84(wkb.loads(bytes(geom)), crs), name)
        for area_id, name, geom in rows
    }


def patrol_totals(
    session: Session,
    jurisdiction: Jurisdiction,
    area: Area | None,
    kind: str,
    res: int,
    start: dt.datetime,
    end: dt.datetime,
    max_gap_minutes: int,
) -> list:
    """Per cell with plausible fixes in [start, end): `cell`, `checkins`, `patrollers`,
    `last_patrolled_at`, `seconds` (patrol time: each gap between fixes counts up to
    `max_gap_minutes`, SERVICE_MAX_GAP_MINUTES), ordered by cell."""
    cell = _cell_column(kind, res).label("cell")
    gap = CheckIn.recorded_at - func.lag(CheckIn.recorded_at).over(
        partition_by=CheckIn.patrol_id, order_by=CheckIn.recorded_at
    )
    fixes = (
        select(cell, CheckIn.volunteer_id, CheckIn.recorded_at, gap.label("gap"))
        .where(CheckIn.recorded_at >= start, CheckIn.recorded_at < end)
        .where(*_fix_conditions(jurisdiction, area))
        .subquery()
    )
    max_gap = max_gap_minutes * 60
    # LEAST ignores NULLs: a patrol's first fix in the window (no gap) must add nothing.
    seconds = func.least(func.extract("epoch", fixes.c.gap), max_gap)
    rows = session.execute(
        select(
            fixes.c.cell,
            func.count().label("checkins"),
            func.count(fixes.c.volunteer_id.distinct()).label("patrollers"),
            func.max(fixes.c.recorded_at).label("last_patrolled_at"),
            func.coalesce(func.sum(seconds).filter(fixes.c.gap.is_not(None)), 0).label("seconds"),
        )
        .where(fixes.c.cell.is_not(None))
        .group_by(fixes.c.cell)
        .order_by(fixes.c.cell)
        .limit(MAX_CELLS + 1)
    ).all()
    if len(rows) > MAX_CELLS:
        raise Unprocessable(_("Too many cells: choose a smaller area or a coarser resolution."))
    return rows


def cells(
    session: Session, user: User, args: dict[str, Any], start, end, *, max_gap_minutes: int
) -> dict[str, Any]:
    """A FeatureCollection of the cells patrolled in [start, end): patrol minutes, distinct
    patrollers, check-ins and the last fix, per admin grid cell or H3 cell."""
    jurisdiction, area = scope(session, user, args.get("area_id"))
    kind, res = args["cells"], args["resolution"]
    rows = patrol_totals(session, jurisdiction, area, kind, res, start, end, max_gap_minutes)
    shapes = geometries(session, kind, [r.cell for r in rows], args["crs"])
    features = []
    for row in rows:
        geometry, name = shapes.get(row.cell, (None, None))
        features.append(
            feature(
                geometry,
                {
                    "cell_id": cell_id(kind, row.cell),
                    "name": name,
                    "patrol_minutes": round(float(row.seconds) / 60, 1),
                    "patrollers": row.patrollers,
                    "checkins": row.checkins,
                    "last_patrolled_at": row.last_patrolled_at.isoformat(),
                },
                cell_id(kind, row.cell),
            )
        )
    return feature_collection(features)


def _scope_polygon(session: Session, jurisdiction: Jurisdiction, area: Area | None):
    """The ground the caller may see, inside `area` when given, as one shapely geometry."""
    if jurisdiction.everywhere:
        ground = select(func.ST_Union(Area.geom)).where(
            Area.level == AreaLevel.DISTRICT if area is None else Area.id == area.id
        )
    else:
        granted = (
            select(func.ST_Union(Area.geom))
            .where(Area.id.in_(sorted(jurisdiction.area_ids)))
            .scalar_subquery()
        )
        ground = (
            select(granted)
            if area is None
            else select(func.ST_Intersection(Area.geom, granted)).where(Area.id == area.id)
        )
    value = session.scalar(select(func.ST_AsBinary(ground.scalar_subquery())))
    return wkb.loads(bytes(value)) if value is not None else None


def _candidate_cells(session: Session, jurisdiction, area, kind: str, res: int) -> list:
    if kind == "admin":
        columns = area_path_columns(Area)
        return list(
            session.scalars(
                select(Area.id)
                .where(
                    Area.level == AreaLevel.GRID_CELL,
                    jurisdiction.clause(columns),
                    in_area(columns, area),
                )
                .limit(MAX_CELLS + 1)
            )
        )
    ground = _scope_polygon(session, jurisdiction, area)
    if ground is None or ground.is_empty:
        return []
    return cells_covering(ground, res)


def gaps(session: Session, user: User, args: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """Cells of the caller's jurisdiction (inside `area_id`) with no plausible fix for `hours`,
    the longest unwatched first; `last_patrolled_at` looks back at most 30 days."""
    jurisdiction, area = scope(session, user, args.get("area_id"))
    kind, res = args["cells"], args["resolution"]
    candidates = _candidate_cells(session, jurisdiction, area, kind, res)
    if len(candidates) > MAX_CELLS:
        raise Unprocessable(_("Too many cells: choose a smaller area or a coarser resolution."))
    cell = _cell_column(kind, res)
    last_seen = dict(
        session.execute(
            select(cell, func.max(CheckIn.recorded_at))
            .where(CheckIn.recorded_at >= now - LOOKBACK, CheckIn.recorded_at <= now)
            .where(*_fix_conditions(jurisdiction, area), cell.is_not(None))
            .group_by(cell)
        ).all()
    )
    cutoff = now - dt.timedelta(hours=args["hours"])
    unwatched = [c for c in candidates if last_seen.get(c) is None or last_seen[c] < cutoff]
    never = dt.datetime.min.replace(tzinfo=dt.UTC)
    unwatched.sort(key=lambda c: (last_seen.get(c) or never, cell_id(kind, c)))
    shapes = geometries(session, kind, unwatched, args["crs"])
    features = []
    for c in unwatched:
        geometry, name = shapes.get(c, (None, None))
        last = last_seen.get(c)
        features.append(
            feature(
                geometry,
                {
                    "cell_id": cell_id(kind, c),
                    "name": name,
                    "last_patrolled_at": last.isoformat() if last else None,
                    "hours_unwatched": round((now - last).total_seconds() / 3600, 1)
                    if last
                    else None,
                },
                cell_id(kind, c),
            )
        )
    return feature_collection(features)
