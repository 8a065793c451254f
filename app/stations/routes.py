"""Stations: public search and map, staff registry."""

from __future__ import annotations

from dataclasses import asdict

from flask import Response, current_app
from flask.views import MethodView
from geoalchemy2.shape import to_shape

from app.core import fastjson, geojson, preconditions
from app.core.auth import GRID_STAFF, current_user
from app.core.blueprint import Blueprint
from app.core.caching import public_data
from app.core.errors import Unprocessable
from app.core.geojson import GEOJSON, wants_geojson
from app.core.i18n import _
from app.core.pagination import PageArgsSchema, page_of, paginate
from app.core.preconditions import versioned
from app.core.replica import heavy_read
from app.extensions import db, limiter
from app.stations import answers, service, transfer
from app.stations.models import Station
from app.stations.schemas import (
    BboxArgsSchema,
    CrsArgsSchema,
    ExportArgsSchema,
    ImportFileSchema,
    ImportFormSchema,
    ImportReportSchema,
    NearbyArgsSchema,
    PeriodArgsSchema,
    StationCreateSchema,
    StationFeatureCollectionSchema,
    StationImportSchema,
    StationListSchema,
    StationSchema,
    StationStatsSchema,
    StationUpdateSchema,
    SummaryArgsSchema,
    VisitCodeSchema,
    VisitCreateSchema,
    VisitSchema,
    VisitsSummarySchema,
)
from geo.crs import CoordSystem, from_wgs84, to_wgs84

blp = Blueprint("stations", __name__, url_prefix="/api/v1/stations", description="Service stations")


_ATTRIBUTES = [name for name in StationSchema().fields if hasattr(Station, name)]


def _item(station, crs: str) -> dict:
    """A station's values for StationSchema, with its position in `crs` (one station read or
    written; the lists answer through app/stations/answers.py)."""
    point = to_shape(station.geom)
    lon, lat = from_wgs84(point.x, point.y, crs)
    item = {name: getattr(station, name) for name in _ATTRIBUTES}
    item.update(
        lon=round(lon, 7),
        lat=round(lat, 7),
        open_now=None,
        distance_m=None,
    )
    return item


def _answer(items: list[dict], crs: str, page: dict | None = None) -> Response:
    """Listing items as JSON (`{"items": ...}`, with `page`'s members), or as GeoJSON labelled
    with `crs` when asked for; serialised by orjson (app/stations/answers.py), StationSchema's
    shape."""
    if wants_geojson():
        return geojson.answer(geojson.point_collection(items, answers.pop_position), crs)
    return fastjson.answer({**(page or {}), "items": items})


@blp.route("/nearby")
class Nearby(MethodView):
    @blp.public
    @public_data
    @blp.arguments(NearbyArgsSchema, location="query")
    @blp.response(200, StationListSchema)
    @blp.alt_response(
        200,
        schema=StationFeatureCollectionSchema,
        description="The same as a GeoJSON FeatureCollection",
        content_type=GEOJSON,
        success=True,
    )
    def get(self, args):
        """The nearest active stations, nearest first, with distance and whether open now.

        Filters: `type` and `amenity` (repeatable; all amenities must be there), `open_now`
        (Asia/Shanghai time, across midnight and on exception days), `radius_m` (at most 20 km),
        `limit` (at most 50). Coordinates in and out in the caller's system (`coord_system`,
        `crs`). With `f=geojson` (or `Accept: application/geo+json`), a FeatureCollection.
        """
        lon, lat = to_wgs84(args["lon"], args["lat"], args["coord_system"])
        rows = service.nearby(
            db.session,
            lon,
            lat,
            radius_m=args["radius_m"],
            limit=args["limit"],
            types=args["type"],
            amenities=args["amenity"],
            open_now=args["open_now"],
            columns=service.listing_columns(),
        )
        return _answer([answers.item(row._mapping, args["crs"]) for row in rows], args["crs"])


@blp.route("")
class Stations(MethodView):
    @blp.public
    @public_data
    @blp.arguments(BboxArgsSchema, location="query")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_of(StationSchema))
    @blp.alt_response(
        200,
        schema=StationFeatureCollectionSchema,
        description="The page as a GeoJSON FeatureCollection (no total)",
        content_type=GEOJSON,
        success=True,
    )
    def get(self, args, page):
        """Active stations inside a bbox, for the map (as GeoJSON with `f=geojson` or
        `Accept: application/geo+json`)."""
        bbox = None
        if "bbox" in args:
            west, south, east, north = args["bbox"]
            bbox = (
                *to_wgs84(west, south, args["coord_system"]),
                *to_wgs84(east, north, args["coord_system"]),
            )
        if wants_geojson():
            # A FeatureCollection carries no total: the page alone, one statement, no count;
            # in WGS-84 (the map's usual ask) PostgreSQL writes it whole.
            statement = service.map_page_statement(bbox is not None, bool(args["type"]))
            values = service.map_page_values(bbox, args["type"], **page)
            if args["crs"] == CoordSystem.WGS84:
                body = answers.geojson_page(db.session, statement, values)
                return geojson.answer(body, args["crs"])
            rows = db.session.execute(statement, values).mappings()
            return _answer([answers.item(row, args["crs"]) for row in rows], args["crs"])
        query = service.in_bbox(bbox, args["type"], columns=service.listing_columns())
        result = paginate(db.session, query, scalars=False, **page)
        items = [answers.item(row, args["crs"]) for row in result.pop("items")]
        return _answer(items, args["crs"], result)

    @blp.role_required(GRID_STAFF)
    @blp.arguments(StationCreateSchema)
    @blp.arguments(CrsArgsSchema, location="query")
    @blp.response(201, StationSchema)
    def post(self, body, args):
        """Register a station at a place inside your jurisdiction."""
        location = body.pop("location")
        station = service.create_station(db.session, current_user(), {**body, "location": location})
        return _item(station, args["crs"])


@blp.route("/import")
class Import(MethodView):
    @blp.role_required(GRID_STAFF)
    @blp.multipart_body(StationImportSchema)
    @blp.arguments(ImportFileSchema, location="files")
    @blp.arguments(ImportFormSchema, location="form")
    @blp.response(200, ImportReportSchema)
    def post(self, files, form):
        """Import stations from CSV or GeoJSON (multipart field `file`), by `external_ref`.

        New references are created, known ones updated; every station must lie inside your
        jurisdiction. A bad row is reported with its CSV line number (or feature index) and
        skipped; the others are imported. `dry_run=true` reports without keeping anything.
        CSV columns: external_ref, name, type, lon, lat, opening_hours (JSON, or `24h`),
        and optionally address, phone, operator, amenities (`;`-separated), hours_exceptions
        (JSON), capacity.
        """
        upload = files["file"]
        fmt = "csv" if (upload.filename or "").lower().endswith(".csv") else "geojson"
        try:
            text = upload.read().decode("utf-8")
            report = transfer.import_stations(
                db.session,
                current_user(),
                text,
                fmt=fmt,
                source_crs=CoordSystem(form["source_crs"]),
                dry_run=form["dry_run"],
            )
        except (UnicodeDecodeError, transfer.ImportFormatError) as exc:
            raise Unprocessable(_("The file cannot be read: %(exc)s", exc=exc)) from exc
        return asdict(report)


@blp.route("/export")
class Export(MethodView):
    @blp.role_required(GRID_STAFF)
    @blp.arguments(ExportArgsSchema, location="query")
    @blp.response(200, description="CSV (UTF-8 with BOM) or GeoJSON of the stations")
    @heavy_read
    def get(self, args):
        """Export the stations of your jurisdiction (closed ones too) as CSV or GeoJSON."""
        query = service.for_export(current_user(), args.get("area_id"))
        if args["format"] == "csv" and "f" not in args:
            body = "".join(transfer.export_csv(db.session, query))
            return Response(
                body,
                mimetype="text/csv",
                headers={"Content-Disposition": 'attachment; filename="stations.csv"'},
            )
        body = "".join(transfer.export_geojson(db.session, query))
        return Response(body, mimetype=GEOJSON, headers=geojson.crs_headers("wgs84"))


@blp.route("/visits/summary")
class VisitsSummary(MethodView):
    @blp.role_required(GRID_STAFF)
    @blp.arguments(SummaryArgsSchema, location="query")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, VisitsSummarySchema)
    def get(self, args, page):
        """Visits per station per day inside your jurisdiction, and the busiest hours."""
        query, busiest = service.visits_summary(
            db.session, current_user(), args.get("area_id"), args["from_"], args["to"]
        )
        return {**paginate(db.session, query, scalars=False, **page), "busiest_hours": busiest}


@blp.route("/<uuid:station_id>")
class StationById(MethodView):
    @blp.public
    @public_data
    @versioned(blp)
    @blp.arguments(CrsArgsSchema, location="query")
    @blp.response(200, StationSchema)
    def get(self, args, station_id):
        """One station (closed ones only for staff of its area). Its ETag goes back as If-Match."""
        station = service.get_station(db.session, station_id, _optional_user())
        preconditions.tag("station", station)
        return _item(station, args["crs"])

    @blp.role_required(GRID_STAFF)
    @versioned(blp, edit=True, read_by="GET /stations/{station_id}")
    @blp.arguments(StationUpdateSchema)
    @blp.arguments(CrsArgsSchema, location="query")
    @blp.response(200, StationSchema)
    def patch(self, body, args, station_id):
        """Change a station of your jurisdiction; send the ETag you read as `If-Match`."""
        actor = current_user()
        station = service.get_managed_station(db.session, actor, station_id)
        preconditions.require("station", station)
        station = service.update_station(db.session, actor, station, body)
        preconditions.tag("station", station)
        return _item(station, args["crs"])


@blp.route("/<uuid:station_id>/close")
class CloseStation(MethodView):
    @blp.role_required(GRID_STAFF)
    @blp.response(200, StationSchema)
    def post(self, station_id):
        """Close a station of your jurisdiction (it leaves the public map and search)."""
        station = service.get_managed_station(db.session, current_user(), station_id)
        return _item(service.close_station(db.session, station), "wgs84")


@blp.route("/<uuid:station_id>/visits")
class Visits(MethodView):
    decorators = (limiter.limit(lambda: current_app.config["VISIT_RATE_LIMIT"]),)

    @blp.public
    @blp.arguments(VisitCreateSchema)
    @blp.response(201, VisitSchema)
    def post(self, body, station_id):
        """Record a visit: the code is what the station's QR code holds.

        Anyone may scan (riders need no account); a signed-in volunteer's id is kept with the
        visit, nothing else about the visitor is.
        """
        user = _optional_user()
        station = service.get_station(db.session, station_id)
        return service.record_visit(db.session, station, body["code"], user.id if user else None)


@blp.route("/<uuid:station_id>/visit-code")
class VisitCode(MethodView):
    @blp.role_required(GRID_STAFF)
    @blp.response(200, VisitCodeSchema)
    def get(self, station_id):
        """The code to print in the station's QR code (staff of its area)."""
        station = service.get_managed_station(db.session, current_user(), station_id)
        return {
            "station_id": station.id,
            "code": station.visit_code,
            "qr_payload": f"qunfang:station:{station.id}:{station.visit_code}",
        }


@blp.route("/<uuid:station_id>/stats")
class Stats(MethodView):
    @blp.role_required(GRID_STAFF)
    @blp.arguments(PeriodArgsSchema, location="query")
    @blp.response(200, StationStatsSchema)
    def get(self, args, station_id):
        """Visits per day and per hour of the day (Asia/Shanghai), `from`..`to` inclusive."""
        station = service.get_managed_station(db.session, current_user(), station_id)
        return service.station_stats(db.session, station, args["from_"], args["to"])


def _optional_user():
    from app.core.auth import current_identity

    return current_user() if current_identity() else None
