"""Clue batch payloads."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.core.fields import HORIZON, BoundedDateTime, PlainText
from app.core.i18n import _
from app.exports.models import BATCH_STATUSES, OUTCOMES
from app.tips.models import STATUSES

_CATEGORY = validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$")


class BatchFiltersSchema(Schema):
    area_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=100))
    from_ = BoundedDateTime(data_key="from", load_default=None, latest=HORIZON)
    to = BoundedDateTime(load_default=None, latest=HORIZON)
    categories = fields.List(fields.String(validate=_CATEGORY), load_default=list)
    statuses = fields.List(
        fields.String(validate=validate.OneOf([s for s in STATUSES if s != "merged"])),
        load_default=list,
    )

    @validates_schema
    def _window(self, data, **_kwargs):
        if data["from_"] and data["to"] and data["from_"] >= data["to"]:
            raise ValidationError(_("`from` must be before `to`."), "from")


class BatchCreateSchema(Schema):
    tip_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=10_000))
    filters = fields.Nested(BatchFiltersSchema, load_default=None)
    purpose = PlainText(required=True, validate=validate.Length(5, 500))
    case_reference = PlainText(required=True, validate=validate.Length(1, 100))

    @validates_schema
    def _one_way(self, data, **_kwargs):
        if not data["tip_ids"] and data["filters"] is None:
            raise ValidationError(_("Give tip_ids or filters."), "filters")
        if data["tip_ids"] and data["filters"] is not None:
            raise ValidationError(_("Give tip_ids or filters, not both."), "filters")


class BatchFileSchema(Schema):
    name = fields.String()
    size = fields.Integer()
    sha256 = fields.String()


class BatchSelectionSchema(Schema):
    """What a batch was made from, as recorded: explicit `tip_ids`, or the filters it was given."""

    tip_ids = fields.List(fields.UUID())
    area_ids = fields.List(fields.UUID())
    from_ = fields.String(attribute="from", data_key="from", metadata={"format": "date-time"})
    to = fields.String(metadata={"format": "date-time"})
    categories = fields.List(fields.String())
    statuses = fields.List(fields.String())


class BatchSchema(Schema):
    id = fields.UUID()
    status = fields.String(metadata={"enum": list(BATCH_STATUSES)})
    percent = fields.Integer()
    row_count = fields.Integer()
    files = fields.List(fields.Nested(BatchFileSchema))
    purpose = fields.String()
    case_reference = fields.String()
    filters = fields.Nested(BatchSelectionSchema)
    creator_role = fields.String()
    created_by = fields.UUID()
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    digest = fields.String(allow_none=True, metadata={"description": "the manifest's digest"})
    signature = fields.String(allow_none=True, metadata={"description": "Ed25519, base64"})
    key_id = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    acknowledged_at = fields.DateTime(allow_none=True)
    files_deleted_at = fields.DateTime(
        allow_none=True,
        metadata={
            "description": "the platform's copy of the files was deleted "
            "(BATCH_FILE_DAYS_AFTER_ACK after acknowledgement); the record and digest stay"
        },
    )


class OutcomeSchema(Schema):
    tip_id = fields.UUID(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    note = PlainText(load_default=None, validate=validate.Length(1, 2000))


class OutcomesSchema(Schema):
    items = fields.List(
        fields.Nested(OutcomeSchema), required=True, validate=validate.Length(1, 1000)
    )


class OutcomeItemSchema(Schema):
    tip_id = fields.UUID()
    outcome = fields.String()
    outcome_at = fields.DateTime()


class OutcomeListSchema(Schema):
    items = fields.List(fields.Nested(OutcomeItemSchema))


class SigningKeySchema(Schema):
    algorithm = fields.String()
    key_id = fields.String()
    public_key = fields.String(metadata={"description": "raw 32-byte key, base64"})
    public_key_pem = fields.String()
