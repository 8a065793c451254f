"""Clues by grid cell for staff and police liaisons; the public heatmap."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app
from flask.views import MethodView

from app.core import fastjson, geojson
from app.core.auth import GRID_STAFF, POLICE_LIAISON, current_user
from app.core.blueprint import Blueprint
from app.core.caching import public_data, staff_aggregate
from app.core.geojson import GEOJSON, CellFeatureCollectionSchema
from app.core.periods import minute_ceiling, period
from app.core.replica import heavy_read
from app.extensions import anonymous_bucket, db, limiter
from app.grid import schemas as s
from app.grid import service
from app.patrols import coverage
from geo.geojson import feature, feature_collection

blp = Blueprint("grid", __name__, url_prefix="/api/v1/grid", description="Clues by grid cell")
public_blp = Blueprint(
    "public_heatmap", __name__, url_prefix="/api/v1/public", description="Public map layers"
)


def _now() -> dt.datetime:
    return minute_ceiling(dt.datetime.now(dt.UTC))


def _period(args: dict[str, Any], default_days: int) -> tuple[dt.datetime, dt.datetime]:
    return period(args, default_days=default_days, max_days=366)


def _conditional(document: dict[str, Any], *, crs: str | None = None, public: bool = False):
    """The answer with an ETag of its content: a client sending it back as If-None-Match gets
    304 Not Modified without the body (the aggregates are computed either way; the answer
    on a phone's connection is what is saved). With `crs`, GeoJSON labelled with it (app/core/
    geojson.py); without, JSON."""
    headers = {"Cache-Control": "public, max-age=300" if public else "private, no-cache"}
    if crs is not None:
        return geojson.answer(document, crs, content_etag=True, headers=headers, lenient=True)
    return fastjson.answer(
        fastjson.dumps(document, lenient=True), content_etag=True, headers=headers
    )


def _features(kind: str, rows: list[dict], crs: str, keep: tuple[str, ...]) -> dict[str, Any]:
    shapes = coverage.geometries(db.session, kind, [r["cell"] for r in rows], crs)
    features = []
    for row in rows:
        geometry, name = shapes.get(row["cell"], (None, None))
        properties = {"cell_id": row["cell_id"], "name": name}
        properties.update({key: row[key] for key in keep})
        features.append(feature(geometry, properties, row["cell_id"]))
    return feature_collection(features)


_TIP_CELL_FIELDS = ("total", "by_category", "by_status", "open", "change", "first_at", "last_at")
_STAFF = (GRID_STAFF, POLICE_LIAISON)


@blp.route("/tips")
class GridTips(MethodView):
    @blp.role_required(*_STAFF)
    @staff_aggregate
    @blp.arguments(s.GridTipsArgsSchema, location="query")
    @blp.response(200, CellFeatureCollectionSchema, content_type=GEOJSON)
    @blp.alt_response(304, description="Not Modified (If-None-Match / If-Modified-Since)")
    @heavy_read
    def get(self, args):
        """Tips per cell of your jurisdiction: total, by category and status, open, the change
        against the previous window of equal length, first and last (default last 30 days)."""
        start, end = _period(args, 30)
        rows = service.tip_cells(db.session, current_user(), args, start, end)
        document = _features(args["cells"], rows, args["crs"], _TIP_CELL_FIELDS)
        document["window"] = {"from": start.isoformat(), "to": end.isoformat()}
        return _conditional(document, crs=args["crs"])


@blp.route("/tips/<string:cell>/series")
class GridSeries(MethodView):
    @blp.role_required(*_STAFF)
    @staff_aggregate
    @blp.arguments(s.SeriesArgsSchema, location="query")
    @blp.response(200, s.SeriesSchema)
    @blp.alt_response(304, description="Not Modified")
    @heavy_read
    def get(self, args, cell):
        """Tips of one cell (a grid cell id or an H3 index) per day or week, local time; only
        tips inside your jurisdiction count."""
        start, end = _period(args, 90)
        document = service.series(
            db.session,
            current_user(),
            cell,
            args,
            start,
            end,
            zone=current_app.config["SERVICE_TIMEZONE"],
        )
        return _conditional(document)


@blp.route("/hotspots")
class Hotspots(MethodView):
    @blp.role_required(*_STAFF)
    @staff_aggregate
    @blp.arguments(s.WindowArgsSchema, location="query")
    @blp.response(200, CellFeatureCollectionSchema, content_type=GEOJSON)
    @blp.alt_response(304, description="Not Modified")
    @heavy_read
    def get(self, args):
        """Cells whose latest window is unusually high against their own trailing baseline
        (the 8 windows before it; Poisson tail under 1%, at least 3 tips), most unusual first."""
        rows = service.hotspots(db.session, current_user(), args, _now())
        keep = ("rank", "recent", "baseline_mean", "baseline", "p_value", "ratio")
        return _conditional(_features(args["cells"], rows, args["crs"], keep), crs=args["crs"])


@blp.route("/risk-coverage")
class RiskCoverage(MethodView):
    @blp.role_required(*_STAFF)
    @staff_aggregate
    @blp.arguments(s.WindowArgsSchema, location="query")
    @blp.response(200, CellFeatureCollectionSchema, content_type=GEOJSON)
    @blp.alt_response(304, description="Not Modified")
    @heavy_read
    def get(self, args):
        """Cells ranked by their share of (priority-weighted) clues minus their share of patrol
        time in the window: where to send patrols next."""
        rows = service.risk_coverage(
            db.session,
            current_user(),
            args,
            _now(),
            max_gap_minutes=current_app.config["SERVICE_MAX_GAP_MINUTES"],
        )
        keep = (
            "rank",
            "tips",
            "open",
            "weighted_tips",
            "patrol_minutes",
            "patrollers",
            "last_patrolled_at",
            "tip_share",
            "patrol_share",
            "gap",
        )
        return _conditional(_features(args["cells"], rows, args["crs"], keep), crs=args["crs"])


@public_blp.route("/heatmap")
class PublicHeatmap(MethodView):
    decorators = (
        limiter.limit(lambda: current_app.config["HEATMAP_RATE_LIMIT"], key_func=anonymous_bucket),
    )

    @public_blp.public
    @public_data
    @public_blp.arguments(s.HeatmapArgsSchema, location="query")
    @public_blp.response(200, CellFeatureCollectionSchema, content_type=GEOJSON)
    @public_blp.alt_response(304, description="Not Modified")
    @heavy_read
    def get(self, args):
        """Coarse cells (about 1.4 km) with tips of public categories in `bbox`; a cell with
        fewer than k distinct reporters (k = HEATMAP_MIN_REPORTERS, 5) is left out, so no
        single tipster can be located from the map."""
        now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        rows = service.public_heatmap(
            db.session,
            args["bbox"],
            args["window_days"],
            now,
            k=current_app.config["HEATMAP_MIN_REPORTERS"],
        )
        document = _features("hex", rows, "wgs84", ("count",))
        return _conditional(document, crs="wgs84", public=True)
