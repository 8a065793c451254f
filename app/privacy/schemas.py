from __future__ import annotations

from marshmallow import Schema, fields

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
