"""Task and response payloads. Request schemas list every allowed field."""

from __future__ import annotations

import datetime as dt

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.core.fields import BoundedDateTime, LocationSchema, PlainText
from app.core.i18n import _
from app.tasks.models import (
    LIFECYCLE,
    MAX_RADIUS_M,
    TARGETING_MODES,
    TASK_KINDS,
    WIDEN_AFTER_S,
)

ACTIONS = ("accept", "decline", "arrive", "complete")
# The furthest ahead a task may start or end.
TASK_HORIZON = dt.timedelta(days=92)
_LIFECYCLE_DOC = {
    "description": "open: taking volunteers; filled: `needed` accepted; completed: `needed` "
    "completed; expired: `ends_at` passed before it was completed; cancelled"
}
_SKILL = fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$"))


class TargetingSchema(Schema):
    mode = fields.String(required=True, validate=validate.OneOf(TARGETING_MODES))
    team_id = fields.UUID(load_default=None, metadata={"description": "mode team"})
    volunteer_ids = fields.List(
        fields.UUID(),
        load_default=list,
        validate=validate.Length(max=500),
        metadata={"description": "mode named"},
    )
    max_recipients = fields.Integer(
        load_default=None,
        validate=validate.Range(1, 20_000),
        metadata={"description": "per phase; default 3 × needed (radius: the closest first)"},
    )
    widen_after_s = fields.Integer(
        load_default=WIDEN_AFTER_S,
        validate=validate.Range(0, 3600),
        metadata={"description": "radius: widen (double) when too few accepted by then (0: never)"},
    )
    max_radius_m = fields.Integer(
        load_default=None,
        validate=validate.Range(50, MAX_RADIUS_M),
        metadata={"description": "radius: how far widening may go (default 4 × radius_m)"},
    )

    @validates_schema
    def _mode_fields(self, data, **_kwargs):
        if data["mode"] == "team" and data.get("team_id") is None:
            raise ValidationError(_("Team targeting names its team."), "team_id")
        if data["mode"] == "named" and not data.get("volunteer_ids"):
            raise ValidationError(_("Named targeting lists the volunteers."), "volunteer_ids")


class TaskCreateSchema(Schema):
    title = PlainText(required=True, validate=validate.Length(1, 200))
    description = PlainText(load_default=None, validate=validate.Length(1, 4000))
    kind = fields.String(required=True, validate=validate.OneOf(TASK_KINDS))
    location = fields.Nested(LocationSchema, load_default=None)
    radius_m = fields.Integer(load_default=None, validate=validate.Range(50, MAX_RADIUS_M))
    area_id = fields.UUID(load_default=None)
    starts_at = BoundedDateTime(
        load_default=None,
        earliest=-dt.timedelta(days=1),
        latest=TASK_HORIZON,
        metadata={"description": "default now"},
    )
    ends_at = BoundedDateTime(required=True, latest=TASK_HORIZON)
    needed = fields.Integer(required=True, validate=validate.Range(1, 10_000))
    skills = fields.List(_SKILL, load_default=list, validate=validate.Length(max=10))
    tip_id = fields.UUID(load_default=None)
    targeting = fields.Nested(TargetingSchema, required=True)


class CancelSchema(Schema):
    reason = PlainText(load_default=None, validate=validate.Length(1, 500))


class TaskQueryArgsSchema(Schema):
    status = fields.String(validate=validate.OneOf(LIFECYCLE), metadata=_LIFECYCLE_DOC)
    kind = fields.String(validate=validate.OneOf(TASK_KINDS))
    area_id = fields.UUID()
    active = fields.Boolean(metadata={"description": "open or filled (not over)"})
    crs = fields.String(load_default="wgs84", validate=validate.OneOf(["wgs84", "gcj02", "bd09"]))


class MyTasksArgsSchema(Schema):
    active = fields.Boolean(
        load_default=False, metadata={"description": "open or filled (not over)"}
    )
    crs = fields.String(load_default="wgs84", validate=validate.OneOf(["wgs84", "gcj02", "bd09"]))


class TaskSchema(Schema):
    id = fields.UUID()
    title = fields.String()
    description = fields.String(allow_none=True)
    kind = fields.String(metadata={"enum": list(TASK_KINDS)})
    status = fields.String(metadata={"enum": list(LIFECYCLE), **_LIFECYCLE_DOC})
    over = fields.Boolean(metadata={"description": "ends_at has passed"})
    location = fields.Dict(allow_none=True, metadata={"description": "{lon, lat} in `crs`"})
    radius_m = fields.Integer(allow_none=True)
    area_id = fields.UUID(allow_none=True)
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    needed = fields.Integer()
    accepted = fields.Integer(
        metadata={"description": "volunteers engaged: accepted, arrived or completed"}
    )
    completed = fields.Integer(metadata={"description": "volunteers who completed it"})
    skills = fields.List(fields.String())
    tip_id = fields.UUID(allow_none=True)
    targeting_mode = fields.String(metadata={"enum": list(TARGETING_MODES)})
    phase = fields.Integer(metadata={"description": "radius tasks: how many times it widened"})
    cancelled_at = fields.DateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    created_at = fields.DateTime()


class EngagedSchema(Schema):
    user_id = fields.UUID()
    real_name = fields.String()
    response = fields.String()
    accepted_at = fields.DateTime(allow_none=True)
    arrived_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    note = fields.String(allow_none=True)
    media_ids = fields.List(
        fields.UUID(),
        metadata={"description": "photos of the completion: GET /api/v1/media/{id}"},
    )


class TaskStatsSchema(Schema):
    recipients = fields.Integer(
        allow_none=True,
        metadata={"description": "null while withheld (see `recipients_below`)"},
    )
    recipients_below = fields.Integer(
        allow_none=True,
        metadata={
            "description": "set while a radius task nobody has answered reached fewer than "
            "this many volunteers: counts are withheld then, so that radius probes cannot "
            "locate anyone (TASK_MIN_COUNT_SHOWN)"
        },
    )
    responses = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "accepted, declined, arrived, completed, no_answer"},
    )
    deliveries = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={
            "description": "per device: pending, sent, logged (no credentials for the provider: "
            "written to the log, not sent), unregistered, invalid, failed"
        },
    )
    sms = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={
            "description": "the SMS fallback of urgent tasks, per volunteer: pending, sent, "
            "logged (no SMS credentials), invalid (number refused), failed; not in deliveries"
        },
    )
    received = fields.Integer(
        allow_none=True,
        metadata={"description": "volunteers whose app reported the push arrived"},
    )
    volunteers = fields.List(fields.Nested(EngagedSchema))


class TaskDetailSchema(TaskSchema):
    statistics = fields.Nested(TaskStatsSchema)


class MyResponseSchema(Schema):
    response = fields.String(allow_none=True)
    notified_at = fields.DateTime()
    accepted_at = fields.DateTime(allow_none=True)
    arrived_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    distance_m = fields.Float(allow_none=True)


class MyTaskSchema(TaskSchema):
    mine = fields.Nested(MyResponseSchema)


class ResponseCreateSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    location = fields.Nested(LocationSchema, load_default=None)
    note = PlainText(load_default=None, validate=validate.Length(1, 2000))
    media_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=6))
