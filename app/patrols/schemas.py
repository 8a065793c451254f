"""Patrol, check-in, checkpoint and coverage payloads. Request schemas list every allowed field
(unknown fields are a 422); a batch's items are checked one by one (app/patrols/ingest.py), so
that one bad item is rejected alone."""

from __future__ import annotations

import re
import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from app.core.fields import (
    CLOCK_SKEW,
    COORD_SYSTEMS,
    HORIZON,
    BboxField,
    BoundedDateTime,
    FixSchema,
    LocationSchema,
    PlainText,
    UnjudgedObject,
)
from app.core.geojson import GeoJSONFormatArgsSchema
from app.core.i18n import _, _l
from app.patrols.models import (
    MAX_CHECKPOINT_RADIUS_M,
    MIN_CHECKPOINT_RADIUS_M,
    PATROL_KINDS,
    PATROL_STATUSES,
    SCAN_METHODS,
)
from app.patrols.schedule import DAYS

MAX_BATCH = 500
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


# -- patrols ---------------------------------------------------------------------------------------


class PatrolCreateSchema(Schema):
    id = fields.UUID(
        load_default=None,
        metadata={
            "description": "a random UUID the phone chose, so that a patrol started offline "
            "can be referred to before it syncs; sending it again returns the same patrol"
        },
    )
    kind = fields.String(required=True, validate=validate.OneOf(PATROL_KINDS))
    team_id = fields.UUID(
        load_default=None, metadata={"description": "required for team_patrol; you are a member"}
    )
    started_at = BoundedDateTime(
        load_default=None,
        latest=CLOCK_SKEW,
        metadata={"description": "device time when started offline; default now"},
    )


class PatrolEndSchema(Schema):
    ended_at = BoundedDateTime(
        load_default=None,
        latest=CLOCK_SKEW,
        metadata={"description": "device time when ended offline; default now"},
    )


class PatrolQueryArgsSchema(Schema):
    mine = fields.Boolean(
        load_default=False, metadata={"description": "staff: your own patrols, not your area's"}
    )
    status = fields.String(validate=validate.OneOf(PATROL_STATUSES))
    kind = fields.String(validate=validate.OneOf(PATROL_KINDS))
    volunteer_id = fields.UUID(metadata={"description": "staff"})
    team_id = fields.UUID()
    area_id = fields.UUID(metadata={"description": "staff: patrols that started in this area"})
    from_ = BoundedDateTime(
        data_key="from", latest=HORIZON, metadata={"description": "started at or after"}
    )
    to = BoundedDateTime(latest=HORIZON, metadata={"description": "started before"})


class TrackArgsSchema(Schema):
    crs = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))


class PatrolSchema(Schema):
    # Always present in an answer: required, so that clients need not test for them.
    id = fields.UUID(required=True)
    volunteer_id = fields.UUID(required=True)
    kind = fields.String(required=True, metadata={"enum": list(PATROL_KINDS)})
    team_id = fields.UUID(allow_none=True)
    status = fields.String(required=True, metadata={"enum": list(PATROL_STATUSES)})
    started_at = fields.DateTime(required=True)
    ended_at = fields.DateTime(allow_none=True)
    end_reason = fields.String(
        allow_none=True, metadata={"description": "ended (by you) or idle (no fix for hours)"}
    )
    checkin_count = fields.Integer()
    flagged_count = fields.Integer(metadata={"description": "fixes kept but flagged"})
    visit_count = fields.Integer(metadata={"description": "counted checkpoint visits"})
    distance_m = fields.Float(metadata={"description": "along the track, flagged jumps left out"})
    service_hours = fields.Float(
        metadata={"description": "time backed by fixes, before the daily cap (summarised)"}
    )
    last_fix_at = fields.DateTime(allow_none=True)
    subdistrict_id = fields.UUID(allow_none=True)
    community_id = fields.UUID(allow_none=True)


class PatrolDetailSchema(PatrolSchema):
    track = fields.Dict(
        allow_none=True,
        metadata={"description": "GeoJSON LineString, simplified (~5 m), in `crs`"},
    )


# -- check-ins -------------------------------------------------------------------------------------


# What a checkpoint's QR code holds: qunfang:checkpoint:<id>:<code> (app/patrols/checkpoints.py).
QR_PREFIX = "qunfang:checkpoint"


def payload_id(code: str | None) -> uuid.UUID | None:
    """The checkpoint id a whole QR payload names (None for a bare code); ValueError when it
    starts like a payload but is not one."""
    if code is None or not code.startswith(QR_PREFIX + ":"):
        return None
    checkpoint_id, separator, secret = code[len(QR_PREFIX) + 1 :].partition(":")
    if not separator or not secret:
        raise ValueError(code)
    return uuid.UUID(checkpoint_id)


class CheckpointScanSchema(Schema):
    id = fields.UUID(
        load_default=None,
        metadata={
            "description": "the checkpoint scanned; may be left out when `code` is the "
            "whole QR payload, which names it"
        },
    )
    method = fields.String(required=True, validate=validate.OneOf(SCAN_METHODS))
    code = fields.String(
        load_default=None,
        validate=validate.Length(1, 200),
        metadata={
            "description": "qr / nfc: what the code holds, as read: the whole payload "
            f"`{QR_PREFIX}:<id>:<code>` or the code alone"
        },
    )

    @validates_schema
    def _code_for_scans(self, data, **_kwargs):
        if data["method"] in ("qr", "nfc") and not data.get("code"):
            raise ValidationError(_("A qr or nfc scan carries the scanned code."), "code")
        try:
            named = payload_id(data.get("code"))
        except ValueError as exc:
            raise ValidationError(
                _("A QR payload reads %(form)s.", form=f"{QR_PREFIX}:<id>:<code>"), "code"
            ) from exc
        if data.get("id") is None and named is None:
            raise ValidationError(_("Missing data for required field."), "id")
        if data.get("id") is not None and named is not None and named != data["id"]:
            raise ValidationError(_("The scanned payload names another checkpoint."), "id")

    @post_load
    def _read_payload(self, data, **_kwargs):
        named = payload_id(data.get("code"))
        if named is not None:
            data["id"], data["code"] = named, data["code"].rsplit(":", 1)[1]
        return data


class CheckInItemSchema(Schema):
    """One fix. Coordinates are checked by the service: out of range is a rejected item."""

    client_id = fields.String(
        required=True,
        validate=[
            validate.Length(1, 64),
            validate.Predicate("isprintable", error=_l("Printable characters only.")),
        ],
        metadata={
            "description": "any id the app generates for this fix (a UUID is usual), 1 to 64 "
            "characters, unique within the patrol: sending it again is a duplicate, not a new fix",
            "example": "3f1c9a8e-0b6d-4e2f-9a41-7c2d5e8b1f03",
        },
    )
    # Absurd times are invalid here; plausible ones the service judges (in_future, ...).
    recorded_at = BoundedDateTime(
        required=True, latest=HORIZON, metadata={"description": "device time"}
    )
    location = fields.Nested(
        FixSchema,
        required=True,
        metadata={
            "description": "where the device was; out of range is rejected per item as "
            "`coordinates_out_of_range`"
        },
    )
    checkpoint = fields.Nested(CheckpointScanSchema, load_default=None)


class CheckInBatchSchema(Schema):
    """A batch (`items`, up to 500), or one check-in sent as it is (taken as a batch of one).
    Items are checked one by one by the service, so one bad item is rejected alone."""

    items = fields.List(
        UnjudgedObject(CheckInItemSchema),
        required=True,
        validate=validate.Length(1, MAX_BATCH),
        metadata={
            "description": "CheckInItem objects, up to 500; each is judged alone: a bad one is "
            "answered `rejected` with a reason, the others are stored",
            "x-judged-per-item": True,
        },
    )

    @pre_load
    def _single(self, data, **_kwargs):
        if isinstance(data, dict) and "items" not in data:
            return {"items": [data]}
        return data


class VisitOutcomeSchema(Schema):
    checkpoint_id = fields.UUID()
    counted = fields.Boolean()
    reason = fields.String(
        allow_none=True,
        metadata={
            "description": "why not counted: unknown_checkpoint, invalid_code, outside_radius, "
            "too_soon (within the checkpoint's minimum interval)"
        },
    )


class CheckInOutcomeSchema(Schema):
    client_id = fields.String(
        allow_none=True, metadata={"description": "as sent; null when the item had none"}
    )
    outcome = fields.String(metadata={"enum": ["accepted", "duplicate", "rejected"]})
    reason = fields.String(
        allow_none=True,
        metadata={
            "description": "rejected: invalid, coordinates_out_of_range, in_future, "
            "before_patrol_start, after_patrol_end, past_retention"
        },
    )
    detail = fields.String(allow_none=True)
    flags = fields.List(
        fields.String(),
        metadata={"description": "accepted but flagged: poor_accuracy, implausible_speed"},
    )
    visits = fields.List(fields.Nested(VisitOutcomeSchema))


class CheckInResultSchema(Schema):
    items = fields.List(fields.Nested(CheckInOutcomeSchema), required=True)


# -- checkpoints -----------------------------------------------------------------------------------

_RADIUS = validate.Range(MIN_CHECKPOINT_RADIUS_M, MAX_CHECKPOINT_RADIUS_M)


def _hhmm(value: str) -> None:
    if not _HHMM.match(value):
        raise ValidationError(_("A time of day as HH:MM (00:00 to 23:59)."))


class WindowSchema(Schema):
    days = fields.List(
        fields.String(validate=validate.OneOf(DAYS)),
        load_default=lambda: list(DAYS),
        validate=validate.Length(1, 7),
        metadata={"description": "days the window starts on (default every day)"},
    )
    start = fields.String(required=True, validate=_hhmm, metadata={"example": "22:00"})
    end = fields.String(
        required=True,
        validate=_hhmm,
        metadata={"example": "02:00", "description": "at or before start: the next day"},
    )
    expected_visits = fields.Integer(load_default=1, validate=validate.Range(1, 50))


def _zone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(_("Not a time zone (IANA name, e.g. Asia/Shanghai).")) from exc


class ScheduleSchema(Schema):
    timezone = fields.String(load_default="Asia/Shanghai", validate=[validate.Length(1, 60), _zone])
    windows = fields.List(
        fields.Nested(WindowSchema), required=True, validate=validate.Length(1, 24)
    )


class CheckpointCreateSchema(Schema):
    name = PlainText(required=True, validate=validate.Length(1, 200))
    description = PlainText(load_default=None, validate=validate.Length(1, 2000))
    location = fields.Nested(LocationSchema, required=True)
    radius_m = fields.Integer(load_default=30, validate=_RADIUS)
    schedule = fields.Nested(ScheduleSchema, load_default=None, allow_none=True)
    min_interval_minutes = fields.Integer(load_default=10, validate=validate.Range(0, 1440))
    responsible_id = fields.UUID(
        load_default=None, metadata={"description": "staff alerted on missed windows (default you)"}
    )


class CheckpointUpdateSchema(Schema):
    name = PlainText(validate=validate.Length(1, 200))
    description = PlainText(allow_none=True, validate=validate.Length(1, 2000))
    location = fields.Nested(LocationSchema)
    radius_m = fields.Integer(validate=_RADIUS)
    schedule = fields.Nested(ScheduleSchema, allow_none=True)
    min_interval_minutes = fields.Integer(validate=validate.Range(0, 1440))
    responsible_id = fields.UUID(allow_none=True)
    active = fields.Boolean()


class CheckpointSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    description = fields.String(allow_none=True)
    lon = fields.Float()
    lat = fields.Float()
    radius_m = fields.Integer()
    schedule = fields.Dict(allow_none=True)
    min_interval_minutes = fields.Integer()
    active = fields.Boolean()
    responsible_id = fields.UUID(allow_none=True)
    code_rotated_at = fields.DateTime(allow_none=True)
    subdistrict_id = fields.UUID(allow_none=True)
    community_id = fields.UUID(allow_none=True)
    grid_cell_id = fields.UUID(allow_none=True)


class CheckpointQueryArgsSchema(Schema):
    bbox = BboxField(
        metadata={"type": "string", "description": "min lon,min lat,max lon,max lat (WGS-84)"}
    )
    area_id = fields.UUID()
    active = fields.Boolean()
    crs = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))


class CheckpointCodeSchema(Schema):
    checkpoint_id = fields.UUID()
    code = fields.String(metadata={"description": "what a scan sends as checkpoint.code"})
    qr_payload = fields.String(metadata={"description": "what to print in the QR / write to NFC"})
    rotated_at = fields.DateTime(allow_none=True)


class TimeRangeArgsSchema(Schema):
    from_ = BoundedDateTime(
        data_key="from", latest=HORIZON, metadata={"description": "default: `to` - 7 days"}
    )
    to = BoundedDateTime(latest=HORIZON, metadata={"description": "default: now"})


class CheckpointVisitSchema(Schema):
    id = fields.UUID()
    checkpoint_id = fields.UUID()
    patrol_id = fields.UUID()
    volunteer_id = fields.UUID()
    volunteer_name = fields.String()
    visited_at = fields.DateTime()
    method = fields.String(metadata={"enum": list(SCAN_METHODS)})
    distance_m = fields.Float()


class ComplianceArgsSchema(TimeRangeArgsSchema):
    area_id = fields.UUID()


class ComplianceSchema(Schema):
    checkpoint_id = fields.UUID()
    name = fields.String()
    windows = fields.Integer(metadata={"description": "judged windows starting in the period"})
    visited = fields.Integer()
    missed = fields.Integer()
    rate = fields.Float(allow_none=True, metadata={"description": "visited / windows"})


# -- coverage --------------------------------------------------------------------------------------


class CellsArgsSchema(TimeRangeArgsSchema, GeoJSONFormatArgsSchema):
    area_id = fields.UUID(metadata={"description": "default: your whole jurisdiction"})
    cells = fields.String(load_default="admin", validate=validate.OneOf(["admin", "hex"]))
    resolution = fields.Integer(
        load_default=9,
        validate=validate.Range(5, 9),
        metadata={"description": "hex cells: H3 resolution (9 ≈ 200 m, 8 ≈ 530 m, 7 ≈ 1.4 km)"},
    )
    crs = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))


class GapsArgsSchema(GeoJSONFormatArgsSchema):
    hours = fields.Integer(load_default=24, validate=validate.Range(1, 720))
    area_id = fields.UUID(metadata={"description": "default: your whole jurisdiction"})
    cells = fields.String(load_default="admin", validate=validate.OneOf(["admin", "hex"]))
    resolution = fields.Integer(load_default=9, validate=validate.Range(5, 9))
    crs = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))
