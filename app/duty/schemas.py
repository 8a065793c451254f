"""Duty payloads. Request schemas list every allowed field."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.core.fields import LocationSchema


class DutySchema(Schema):
    on_duty = fields.Boolean(required=True)
    location = fields.Nested(
        LocationSchema,
        load_default=None,
        metadata={"description": "kept only with the location-sharing consent"},
    )


class HeldPositionSchema(Schema):
    lon = fields.Float(required=True)
    lat = fields.Float(required=True)
    crs = fields.String(required=True, metadata={"enum": ["wgs84", "gcj02", "bd09"]})


class DutyStateSchema(Schema):
    on_duty = fields.Boolean(required=True)
    since = fields.DateTime(required=True, allow_none=True)
    position = fields.Nested(
        HeldPositionSchema,
        required=True,
        allow_none=True,
        metadata={
            "description": "the position the server holds for dispatch (what you share), in "
            "the requested crs; null when it holds none (no consent, none sent, or expired)"
        },
    )
    position_at = fields.DateTime(required=True, allow_none=True)
    position_expires_at = fields.DateTime(required=True, allow_none=True)


class DutyArgsSchema(Schema):
    crs = fields.String(load_default="wgs84", validate=validate.OneOf(["wgs84", "gcj02", "bd09"]))
