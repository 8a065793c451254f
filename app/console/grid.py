"""The console's grid page: cells coloured by clue counts with their trend and hotspots, risk
against patrol coverage, and coverage gaps, as 网格 cells or H3 hexagons; a cell's series.

Every figure comes from the API's own services (app/grid/service.py: `tip_cells`, `hotspots`,
`risk_coverage`, `series`; app/patrols/coverage.py: `gaps`, `geometries`) with the signed-in
staff member as the actor, so the jurisdiction rules are the API's: staff see the cells of
their own areas only. This module only merges the four answers per cell for one page.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import current_app, jsonify, render_template, request
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy.orm import Session

from app.auth.models import User
from app.console import bp
from app.console import service as console_service
from app.console.access import signed_in_user, staff_required
from app.core import geojson
from app.core.auth import GRID_STAFF
from app.core.i18n import _, _l
from app.core.periods import minute_ceiling
from app.extensions import db
from app.grid import service as grid_service
from app.grid.schemas import SeriesArgsSchema, WindowField
from app.patrols import coverage
from geo.cells import to_bigint
from geo.geojson import feature, feature_collection

WINDOWS = {7: _l("the last 7 days"), 30: _l("the last 30 days"), 90: _l("the last 90 days")}
UNWATCHED_HOURS = {24: _l("24 hours"), 72: _l("3 days"), 168: _l("7 days")}
RESOLUTIONS = {
    7: _l("large (about 1.4 km)"),
    8: _l("medium (about 530 m)"),
    9: _l("small (about 200 m)"),
}
# The page's table lists at most this many cells (the map shows them all).
TABLE_ROWS = 100
# What to say when a filter is not valid: per field, what it takes.
_HINTS = {
    "cells": _l("Cells: choose 网格 cells or hexagons."),
    "resolution": _l("Hexagon size: choose one of the sizes offered (H3 resolution 7 to 9)."),
    "window": _l("Period: a number of days from 1d to 90d, e.g. 7d."),
    "hours": _l("Unwatched for: choose one of the durations offered."),
    "area_id": _l("Area: choose one of your areas from the list."),
    "crs": _l("Coordinate system: wgs84 or gcj02."),
}


class GridPageArgsSchema(Schema):
    """The grid page's filters (the query string); the API's own window field."""

    cells = fields.String(load_default="admin", validate=validate.OneOf(["admin", "hex"]))
    resolution = fields.Integer(load_default=9, validate=validate.OneOf(sorted(RESOLUTIONS)))
    window_days = WindowField(data_key="window", load_default=7)
    hours = fields.Integer(load_default=24, validate=validate.OneOf(sorted(UNWATCHED_HOURS)))
    area_id = fields.UUID(load_default=None)
    crs = fields.String(load_default="wgs84", validate=validate.OneOf(["wgs84", "gcj02"]))


class BadFilter(Exception):
    """The page's filters did not validate: `message` says which and what they take."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def page_args() -> dict[str, Any]:
    """The filters from the query string; empty fields of the form mean the default."""
    data = {key: value.strip() for key, value in request.args.items() if value.strip()}
    try:
        return GridPageArgsSchema().load(data, unknown="exclude")
    except ValidationError as exc:
        hints = [str(_HINTS.get(key, key)) for key in sorted(exc.messages)]
        raise BadFilter(" ".join(hints)) from exc


@bp.errorhandler(BadFilter)
def _bad_filter(error: BadFilter):
    message = _("Some of the filters are not valid.") + " " + error.message
    return render_template("console/error.html", status=422, message=message), 422


def _blank(cell: Any, cell_id: str) -> dict[str, Any]:
    return {
        "cell": cell,
        "cell_id": cell_id,
        "name": None,
        "total": 0,
        "open": 0,
        "previous": 0,
        "delta": 0,
        "hotspot": None,
        "recent": None,
        "baseline_mean": None,
        "risk_rank": None,
        "gap": None,
        "tip_share": None,
        "patrol_share": None,
        "patrol_minutes": 0.0,
        "unwatched": False,
        "hours_unwatched": None,
        "last_patrolled_at": None,
    }


def _raw_cell(kind: str, cell_id: str) -> Any:
    return uuid.UUID(cell_id) if kind == "admin" else to_bigint(cell_id)


def grid_cells(
    session: Session, actor: User, args: dict[str, Any], now: dt.datetime
) -> tuple[list[dict[str, Any]], dict[Any, dict]]:
    """Every cell of the actor's areas that has clues, is a hotspot, is ranked for risk, was
    patrolled or is a coverage gap (so every cell, for 网格 cells), with all the figures;
    hotspots first, then the most clues. Also the geometries, in `args["crs"]`, of the cells
    the coverage answers drew anyway."""
    kind = args["cells"]
    scope = {
        "cells": kind,
        "resolution": args["resolution"],
        "area_id": args["area_id"],
        "category": [],
        "status": [],
        "window_days": args["window_days"],
    }
    window = dt.timedelta(days=args["window_days"])
    cells: dict[str, dict[str, Any]] = {}

    def entry(row: dict[str, Any]) -> dict[str, Any]:
        return cells.setdefault(row["cell_id"], _blank(row["cell"], row["cell_id"]))

    for row in grid_service.tip_cells(session, actor, scope, now - window, now):
        entry(row).update(
            total=row["total"],
            open=row["open"],
            previous=row["change"]["previous"],
            delta=row["change"]["delta"],
        )
    for row in grid_service.hotspots(session, actor, scope, now):
        entry(row).update(
            hotspot=row["rank"], recent=row["recent"], baseline_mean=row["baseline_mean"]
        )
    max_gap_minutes = current_app.config["SERVICE_MAX_GAP_MINUTES"]
    for row in grid_service.risk_coverage(
        session, actor, scope, now, max_gap_minutes=max_gap_minutes
    ):
        entry(row).update(
            risk_rank=row["rank"],
            gap=row["gap"],
            tip_share=row["tip_share"],
            patrol_share=row["patrol_share"],
        )
    shapes: dict[Any, dict] = {}
    patrolled = coverage.cells(
        session,
        actor,
        {**scope, "crs": args["crs"]},
        now - window,
        now,
        max_gap_minutes=max_gap_minutes,
    )
    for cell in patrolled["features"]:
        props = cell["properties"]
        row = cells.setdefault(
            props["cell_id"], _blank(_raw_cell(kind, props["cell_id"]), props["cell_id"])
        )
        row.update(
            patrol_minutes=props["patrol_minutes"],
            last_patrolled_at=props["last_patrolled_at"],
            name=props["name"],
        )
        shapes[row["cell"]] = cell["geometry"]
    gaps = coverage.gaps(session, actor, {**scope, "hours": args["hours"], "crs": args["crs"]}, now)
    for gap in gaps["features"]:
        props = gap["properties"]
        row = cells.setdefault(
            props["cell_id"], _blank(_raw_cell(kind, props["cell_id"]), props["cell_id"])
        )
        row.update(
            unwatched=True,
            hours_unwatched=props["hours_unwatched"],
            last_patrolled_at=props["last_patrolled_at"],
            name=props["name"],
        )
        shapes[row["cell"]] = gap["geometry"]
    ordered = sorted(
        cells.values(),
        key=lambda c: (c["hotspot"] or 10**9, -c["total"], -(c["gap"] or 0), c["cell_id"]),
    )
    return ordered, shapes


def _with_names(session: Session, kind: str, rows: list[dict], crs: str, shapes: dict) -> dict:
    """Names (of 网格 cells) and the geometries not drawn yet, in `crs`."""
    missing = [row["cell"] for row in rows if row["cell"] not in shapes or row["name"] is None]
    drawn = coverage.geometries(session, kind, missing, crs) if missing else {}
    for row in rows:
        geometry, name = drawn.get(row["cell"], (None, None))
        row["name"] = row["name"] or name
        shapes.setdefault(row["cell"], geometry)
    return shapes


def _now() -> dt.datetime:
    return minute_ceiling(dt.datetime.now(dt.UTC))


@bp.route("/grid")
@staff_required(GRID_STAFF)
def grid():
    """Cells of the staff member's areas: clue counts and trend, hotspots, risk against
    patrol coverage, coverage gaps; a map and a table; a cell's series on click."""
    args = page_args()
    actor = signed_in_user()
    rows, shapes = grid_cells(db.session, actor, args, _now())
    _with_names(db.session, args["cells"], rows[:TABLE_ROWS], "wgs84", shapes)
    query = {k: v for k, v in request.args.items() if k != "crs"}
    return render_template(
        "console/grid.html",
        args=args,
        rows=rows[:TABLE_ROWS],
        total_cells=len(rows),
        hotspots=sum(1 for row in rows if row["hotspot"]),
        unwatched=sum(1 for row in rows if row["unwatched"]),
        window_options=[(f"{days}d", label) for days, label in WINDOWS.items()],
        parse_time=dt.datetime.fromisoformat,
        unwatched_hours=UNWATCHED_HOURS,
        resolutions=RESOLUTIONS,
        area_options=[
            (str(area.id), area.name)
            for area in console_service.areas_for_filter(db.session, actor)
            if area.level in ("subdistrict", "community")
        ],
        query=query,
        tile_url=current_app.config["MAP_TILE_URL"],
        tile_crs=current_app.config["MAP_TILE_CRS"],
    )


@bp.route("/grid/cells.geojson")
@staff_required(GRID_STAFF)
def grid_geojson():
    """The grid page's cells with their figures as GeoJSON in the base map's system (`crs`)."""
    args = page_args()
    rows, shapes = grid_cells(db.session, signed_in_user(), args, _now())
    _with_names(db.session, args["cells"], rows, args["crs"], shapes)
    features = []
    for row in rows:
        properties = {key: value for key, value in row.items() if key != "cell"}
        features.append(feature(shapes.get(row["cell"]), properties, row["cell_id"]))
    return geojson.answer(feature_collection(features), args["crs"])


@bp.route("/grid/series/<string:cell>.json")
@staff_required(GRID_STAFF)
def grid_series(cell: str):
    """One cell's clues per day (per week over more than 90 days), over the latest window and
    the eight before it (the hotspot rule's baseline); only tips of the staff member's areas
    count, as in the API."""
    window = page_args()["window_days"]
    end = _now()
    span = dt.timedelta(days=window * (grid_service.BASELINE_WINDOWS + 1))
    interval = "day" if span.days <= 90 else "week"
    series_args = SeriesArgsSchema().load({"interval": interval})
    document = grid_service.series(
        db.session,
        signed_in_user(),
        cell,
        series_args,
        end - span,
        end,
        zone=current_app.config["SERVICE_TIMEZONE"],
    )
    return jsonify(document)
