"""Area payloads."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.areas.models import AreaLevel
from app.core.fields import COORD_SYSTEMS


class AreaSchema(Schema):
    id = fields.UUID()
    code = fields.String(metadata={"example": "110105001000"})
    name = fields.String()
    level = fields.String(metadata={"enum": [lv.value for lv in AreaLevel]})
    parent_id = fields.UUID(allow_none=True)
    district_id = fields.UUID(allow_none=True)
    subdistrict_id = fields.UUID(allow_none=True)
    community_id = fields.UUID(allow_none=True)
    urban_rural = fields.String(allow_none=True, metadata={"enum": ["urban", "rural"]})
    approximate = fields.Boolean(metadata={"description": "derived, not an official outline"})
    centre_estimated = fields.Boolean(
        metadata={"description": "the centre point was generated or moved, not known"}
    )
    source = fields.String(allow_none=True)


class AreaDetailSchema(AreaSchema):
    geometry = fields.Dict(
        allow_none=True, metadata={"description": "GeoJSON MultiPolygon, when asked for"}
    )


class AreaQueryArgsSchema(Schema):
    level = fields.String(validate=validate.OneOf([lv.value for lv in AreaLevel]))
    parent_id = fields.UUID()
    q = fields.String(validate=validate.Length(1, 50), metadata={"description": "name contains"})
    code = fields.String(
        validate=validate.Regexp(r"^[0-9A-Za-z-]{1,40}$"),
        metadata={
            "description": "the statistical division code (110105001024), or a grid cell's "
            "(110105001024-G004): that area alone",
            "example": "110105001024",
        },
    )


class AreaDetailArgsSchema(Schema):
    geometry = fields.Boolean(load_default=False)
    simplify_m = fields.Float(
        load_default=0,
        validate=validate.Range(min=0, max=1000),
        metadata={"description": "tolerance in metres (0: full detail)"},
    )
    crs = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))


class LocateArgsSchema(Schema):
    lon = fields.Float(required=True, validate=validate.Range(-180, 180))
    lat = fields.Float(required=True, validate=validate.Range(-90, 90))
    coord_system = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))


class AreaPathSchema(Schema):
    district_id = fields.UUID(allow_none=True)
    subdistrict_id = fields.UUID(allow_none=True)
    community_id = fields.UUID(allow_none=True)
    grid_cell_id = fields.UUID(allow_none=True)
