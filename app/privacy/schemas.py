from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.privacy.service import POSITION, PROFILE, REPORTER_DETAILS, TRACK


class AccessSchema(Schema):
    at = fields.AwareDateTime(required=True)
    role = fields.String(
        allow_none=True,
        metadata={"description": "the role the reader acted in (null: the operator's console)"},
    )
    what = fields.String(
        required=True, metadata={"enum": [TRACK, POSITION, REPORTER_DETAILS, PROFILE]}
    )
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


def _section(description: str) -> fields.List:
    return fields.List(fields.Dict(), required=True, metadata={"description": description})


class DataCopySchema(Schema):
    """A copy of your data; each list is newest first and capped (see `limits`, `truncated`)."""

    generated_at = fields.String(required=True)
    profile = fields.Dict(required=True, metadata={"description": "your account"})
    consent_history = _section("every consent given and withdrawn")
    devices = _section("your phones registered for pushes (tokens masked)")
    duty = fields.Dict(required=True, metadata={"description": "whether you are on duty now"})
    team_memberships = _section("teams joined and left")
    patrols = _section("your patrols with their track and the check-ins still kept")
    tips = _section("your named tips: photos (links) and the history you may see")
    tasks = _section("tasks sent to you and your answers")
    service_hours = _section("credited service time by day and source")
    station_visits = _section("station visits made while signed in")
    notifications = _section("your notifications")
    access_log = _section("who (which role) read your data, as GET /me/access-log")
    limits = fields.Dict(required=True, metadata={"description": "the caps applied"})
    truncated = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "sections that held more than the cap"},
    )


class DataArchiveSchema(Schema):
    id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"enum": ["pending", "ready", "failed"]})
    requested_at = fields.AwareDateTime(required=True)
    finished_at = fields.AwareDateTime(allow_none=True)
    expires_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "the file is deleted then"}
    )
    byte_size = fields.Integer(allow_none=True)
    download_url = fields.Method("_download", allow_none=True)

    def _download(self, archive) -> str | None:
        if archive.status != "ready":
            return None
        return f"/api/v1/me/data/archives/{archive.id}/file"
