"""Query arguments of the grid aggregates."""

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.areas.schemas import COORD_SYSTEMS
from app.core.fields import HORIZON, BboxField, BoundedDateTime
from app.core.geojson import GeoJSONFormatArgsSchema
from app.core.i18n import _
from app.tips.models import STATUSES

_CATEGORY = fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$"))
_WINDOW = re.compile(r"^([1-9][0-9]?)d$")


class WindowField(fields.Field):
    """`7d`: a number of days (1 to 90)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if isinstance(self.load_default, int):  # documented as it is written: "7d", not 7
            self.metadata = {"default": f"{self.load_default}d", **self.metadata}

    def _deserialize(self, value, attr, data, **kwargs):
        match = _WINDOW.match(str(value))
        if not match or int(match[1]) > 90:
            raise ValidationError(_("A window in days, 1d to 90d (e.g. 7d)."))
        return int(match[1])


class CellKindSchema(Schema):
    cells = fields.String(load_default="hex", validate=validate.OneOf(["admin", "hex"]))
    resolution = fields.Integer(
        load_default=8,
        validate=validate.Range(5, 9),
        metadata={"description": "hex: H3 resolution (7 ≈ 1.4 km, 8 ≈ 530 m, 9 ≈ 200 m)"},
    )
    crs = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))


class GridTipsArgsSchema(CellKindSchema, GeoJSONFormatArgsSchema):
    area_id = fields.UUID(metadata={"description": "default: your whole jurisdiction"})
    bbox = BboxField(metadata={"type": "string", "description": "min lon,min lat,max lon,max lat"})
    from_ = BoundedDateTime(
        data_key="from", latest=HORIZON, metadata={"description": "default: to - 30 days"}
    )
    to = BoundedDateTime(latest=HORIZON, metadata={"description": "default: now"})
    category = fields.List(_CATEGORY, load_default=list)
    status = fields.List(fields.String(validate=validate.OneOf(STATUSES)), load_default=list)


class SeriesArgsSchema(Schema):
    from_ = BoundedDateTime(
        data_key="from", latest=HORIZON, metadata={"description": "default: to - 90 days"}
    )
    to = BoundedDateTime(latest=HORIZON, metadata={"description": "default: now"})
    interval = fields.String(load_default="day", validate=validate.OneOf(["day", "week"]))
    category = fields.List(_CATEGORY, load_default=list)
    status = fields.List(fields.String(validate=validate.OneOf(STATUSES)), load_default=list)


class WindowArgsSchema(CellKindSchema, GeoJSONFormatArgsSchema):
    area_id = fields.UUID(metadata={"description": "default: your whole jurisdiction"})
    window_days = WindowField(
        data_key="window", load_default=7, metadata={"type": "string", "example": "7d"}
    )


class HeatmapArgsSchema(GeoJSONFormatArgsSchema):
    bbox = BboxField(
        required=True,
        metadata={"type": "string", "description": "min lon,min lat,max lon,max lat (WGS-84)"},
    )
    window_days = WindowField(
        data_key="window", load_default=30, metadata={"type": "string", "example": "30d"}
    )

    @validates_schema
    def _small_enough(self, data, **_kwargs):
        west, south, east, north = data["bbox"]
        if east - west > 1.0 or north - south > 1.0:
            raise ValidationError(_("The bbox spans at most 1 degree each way."), "bbox")


class SeriesPointSchema(Schema):
    start = fields.Date()
    count = fields.Integer()


class SeriesSchema(Schema):
    cell_id = fields.String()
    interval = fields.String()
    timezone = fields.String()
    points = fields.List(fields.Nested(SeriesPointSchema))
