from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.privacy.service import PROFILE, REPORTER_DETAILS, TRACK


class AccessSchema(Schema):
    at = fields.AwareDateTime(required=True)
    role = fields.String(
        allow_none=True,
        metadata={"description": "the role the reader acted in (null: the operator's console)"},
    )
    what = fields.String(required=True, metadata={"enum": [TRACK, REPORTER_DETAILS, PROFILE]})
    purpose = fields.String(allow_none=True, metadata={"description": "the reason they gave"})
    object_type = fields.String(allow_none=True)
    object_id = fields.String(allow_none=True)


class AccountDeleteSchema(Schema):
    password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(1, 200),
        metadata={"description": "your password, re-entered"},
    )


class StaffAccountDeleteSchema(Schema):
    reason = fields.String(
        required=True,
        validate=validate.Length(3, 300),
        metadata={"description": "why, e.g. the volunteer's request in person (audited)"},
    )


class KeptSchema(Schema):
    what = fields.String(required=True)
    why = fields.String(required=True)


class DeletionScheduledSchema(Schema):
    erase_after = fields.AwareDateTime(
        required=True, metadata={"description": "when your data will be erased"}
    )
    cancel = fields.String(
        required=True, metadata={"description": "how to cancel before then: sign in"}
    )
    kept_by_law = fields.List(
        fields.Nested(KeptSchema),
        required=True,
        metadata={"description": "what stays after erasure because the law requires it"},
    )
