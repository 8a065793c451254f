"""Station payloads."""

from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate

from app.core.fields import COORD_SYSTEMS, HORIZON, BboxField, BoundedDate, LocationSchema
from app.core.geojson import (
    FormatArgsSchema,
    GeoJSONFormatArgsSchema,
    GeoJSONPointSchema,
    feature_collection_of,
)
from app.core.pagination import page_of
from app.stations.models import AMENITIES, STATION_TYPES, STATUSES

_SPANS_DOC = {
    "description": 'Weekly spans per day ("mon".."sun"): [["08:00","20:00"]]; an end at or '
    'before the start runs past midnight; ["00:00","24:00"] is the whole day.',
    "example": {"mon": [["08:00", "20:00"]], "sat": [["22:00", "06:00"]]},
}
_EXCEPTIONS_DOC = {
    "description": 'Dated exceptions: {"date": "2026-10-01", "closed": true} or '
    '{"date": ..., "spans": [["10:00", "16:00"]]}.'
}


class StationCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    type = fields.String(required=True, validate=validate.OneOf(STATION_TYPES))
    location = fields.Nested(LocationSchema, required=True)
    address = fields.String(load_default=None, validate=validate.Length(max=300))
    external_ref = fields.String(load_default=None, validate=validate.Length(1, 100))
    team_id = fields.UUID(load_default=None)
    operator = fields.String(load_default=None, validate=validate.Length(max=200))
    phone = fields.String(load_default=None, validate=validate.Length(max=30))
    amenities = fields.List(fields.String(validate=validate.OneOf(AMENITIES)), load_default=list)
    opening_hours = fields.Dict(required=True, metadata=_SPANS_DOC)
    hours_exceptions = fields.List(fields.Dict(), load_default=list, metadata=_EXCEPTIONS_DOC)
    capacity = fields.Integer(load_default=None, validate=validate.Range(0, 10_000))


class StationUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(1, 200))
    type = fields.String(validate=validate.OneOf(STATION_TYPES))
    location = fields.Nested(LocationSchema)
    address = fields.String(allow_none=True, validate=validate.Length(max=300))
    team_id = fields.UUID(allow_none=True)
    operator = fields.String(allow_none=True, validate=validate.Length(max=200))
    phone = fields.String(allow_none=True, validate=validate.Length(max=30))
    amenities = fields.List(fields.String(validate=validate.OneOf(AMENITIES)))
    opening_hours = fields.Dict(metadata=_SPANS_DOC)
    hours_exceptions = fields.List(fields.Dict(), metadata=_EXCEPTIONS_DOC)
    capacity = fields.Integer(allow_none=True, validate=validate.Range(0, 10_000))
    status = fields.String(
        validate=validate.OneOf(STATUSES), metadata={"description": "active reopens a station"}
    )
    verified = fields.Boolean(metadata={"description": "true: someone checked it today"})


class StationSchema(Schema):
    """A station, with its position in the coordinate system asked for (`crs`)."""

    id = fields.UUID()
    external_ref = fields.String(allow_none=True)
    type = fields.String(metadata={"enum": list(STATION_TYPES)})
    name = fields.String()
    address = fields.String(allow_none=True)
    lon = fields.Float()
    lat = fields.Float()
    team_id = fields.UUID(allow_none=True)
    operator = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    amenities = fields.List(fields.String())
    opening_hours = fields.Dict(metadata=_SPANS_DOC)
    hours_exceptions = fields.List(fields.Dict())
    capacity = fields.Integer(allow_none=True)
    status = fields.String(metadata={"enum": list(STATUSES)})
    last_verified_at = fields.DateTime(allow_none=True)
    generated = fields.Boolean(metadata={"description": "demo data, not a real station"})
    subdistrict_id = fields.UUID(allow_none=True)
    community_id = fields.UUID(allow_none=True)
    open_now = fields.Boolean(metadata={"description": "in Asia/Shanghai time"})
    distance_m = fields.Float(allow_none=True)


class StationListSchema(Schema):
    items = fields.List(fields.Nested(StationSchema), required=True)


class CrsArgsSchema(Schema):
    crs = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))


class NearbyArgsSchema(CrsArgsSchema, FormatArgsSchema):
    lon = fields.Float(required=True, validate=validate.Range(-180, 180))
    lat = fields.Float(required=True, validate=validate.Range(-90, 90))
    coord_system = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))
    type = fields.List(fields.String(validate=validate.OneOf(STATION_TYPES)), load_default=list)
    amenity = fields.List(fields.String(validate=validate.OneOf(AMENITIES)), load_default=list)
    open_now = fields.Boolean(load_default=False)
    radius_m = fields.Float(load_default=3000, validate=validate.Range(1, 20_000))
    limit = fields.Integer(load_default=10, validate=validate.Range(1, 50))


class BboxArgsSchema(CrsArgsSchema, FormatArgsSchema):
    bbox = BboxField(
        metadata={
            "description": "min lon,min lat,max lon,max lat (in `coord_system`)",
            "type": "string",
            "example": "116.44,39.90,116.48,39.92",
        }
    )
    coord_system = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))
    type = fields.List(fields.String(validate=validate.OneOf(STATION_TYPES)), load_default=list)


class VisitCreateSchema(Schema):
    code = fields.String(
        required=True,
        validate=validate.Length(1, 64),
        metadata={"description": "the code in the station's QR code"},
    )


class VisitSchema(Schema):
    id = fields.UUID()
    station_id = fields.UUID()
    visited_at = fields.DateTime()


class VisitCodeSchema(Schema):
    station_id = fields.UUID()
    code = fields.String()
    qr_payload = fields.String(metadata={"description": "what to print in the QR code"})


class PeriodArgsSchema(Schema):
    from_ = BoundedDate(
        required=True, data_key="from", latest=HORIZON, metadata={"description": "local date"}
    )
    to = BoundedDate(
        required=True, latest=HORIZON, metadata={"description": "local date, inclusive"}
    )


class DayCountSchema(Schema):
    date = fields.Date()
    visits = fields.Integer()


class HourCountSchema(Schema):
    hour = fields.Integer(metadata={"description": "0-23, Asia/Shanghai"})
    visits = fields.Integer()


class StationStatsSchema(Schema):
    station_id = fields.UUID()
    from_ = fields.Date(data_key="from")
    to = fields.Date()
    total = fields.Integer()
    by_day = fields.List(fields.Nested(DayCountSchema))
    by_hour = fields.List(fields.Nested(HourCountSchema))


class SummaryArgsSchema(PeriodArgsSchema):
    area_id = fields.UUID()


class StationDaySchema(Schema):
    station_id = fields.UUID()
    name = fields.String()
    date = fields.Date()
    visits = fields.Integer()


class VisitsSummarySchema(page_of(StationDaySchema)):
    busiest_hours = fields.List(fields.Nested(HourCountSchema), required=True)


class ImportFormSchema(Schema):
    source_crs = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))
    dry_run = fields.Boolean(load_default=False)


class ImportFileSchema(Schema):
    file = Upload(required=True, metadata={"description": ".csv or .geojson / .json"})


class StationImportSchema(ImportFileSchema, ImportFormSchema):
    """The multipart body, as documented: the file and the form fields."""


class ImportRowErrorSchema(Schema):
    row = fields.Integer(metadata={"description": "CSV line number, or GeoJSON feature index"})
    detail = fields.String()


class ImportReportSchema(Schema):
    created = fields.Integer()
    updated = fields.Integer()
    errors = fields.List(fields.Nested(ImportRowErrorSchema))
    dry_run = fields.Boolean()


class ExportArgsSchema(GeoJSONFormatArgsSchema):
    """`format=csv|geojson`; `f=geojson` (what GIS tools send, app/core/geojson.py) is GeoJSON
    whatever `format` says."""

    format = fields.String(load_default="csv", validate=validate.OneOf(["csv", "geojson"]))
    area_id = fields.UUID()


class StationPropertiesSchema(StationSchema):
    """A station as a GeoJSON Feature's properties: its position is the geometry."""

    class Meta:
        exclude = ("lon", "lat")


StationFeatureCollectionSchema = feature_collection_of(
    "Station", GeoJSONPointSchema, StationPropertiesSchema
)
