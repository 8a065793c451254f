"""The audit trail's query and answer, shared by `GET /api/v1/audit` and the console's audit
page (app/console/admin.py)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.core.audit import OUTCOMES
from app.core.fields import HORIZON, BoundedDateTime
from app.core.i18n import _


class AuditArgsSchema(Schema):
    actor_id = fields.UUID(load_default=None)
    action = fields.String(load_default=None, validate=validate.Length(1, 50))
    object_type = fields.String(load_default=None, validate=validate.Length(1, 30))
    object_id = fields.String(load_default=None, validate=validate.Length(1, 64))
    outcome = fields.String(load_default=None, validate=validate.OneOf(OUTCOMES))
    from_ = BoundedDateTime(data_key="from", load_default=None, latest=HORIZON)
    to = BoundedDateTime(load_default=None, latest=HORIZON)

    @validates_schema
    def _window(self, data, **_kwargs):
        if data["from_"] and data["to"] and data["from_"] >= data["to"]:
            raise ValidationError(_("`from` must be before `to`."), "from")


class AuditEventSchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor_id = fields.UUID(allow_none=True)
    actor_role = fields.String(allow_none=True)
    action = fields.String()
    object_type = fields.String(allow_none=True)
    object_ids = fields.List(fields.String())
    purpose = fields.String(allow_none=True)
    outcome = fields.String()
    request_id = fields.String(allow_none=True)
    details = fields.Dict()
