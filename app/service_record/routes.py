"""Service records: your hours, and staff's view of their volunteers'."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app
from flask.views import MethodView
from marshmallow import Schema, fields

from app.core.auth import GRID_STAFF, current_user
from app.core.blueprint import Blueprint
from app.core.errors import Unprocessable
from app.core.fields import HORIZON, BoundedDate
from app.core.i18n import _
from app.extensions import db
from app.service_record import service

blp = Blueprint(
    "service_record", __name__, url_prefix="/api/v1", description="Volunteer service hours"
)


class RecordArgsSchema(Schema):
    from_ = BoundedDate(
        data_key="from", latest=HORIZON, metadata={"description": "local date; default Jan 1"}
    )
    to = BoundedDate(
        latest=HORIZON, metadata={"description": "local date, inclusive; default today"}
    )


class MonthSchema(Schema):
    month = fields.String(metadata={"example": "2026-11"})
    hours = fields.Float()
    by_kind = fields.Dict(keys=fields.String(), values=fields.Float())


class ServiceRecordSchema(Schema):
    volunteer_id = fields.UUID()
    from_ = fields.Date(data_key="from")
    to = fields.Date()
    total_hours = fields.Float(metadata={"description": "after the daily cap"})
    uncapped_hours = fields.Float(metadata={"description": "before the daily cap"})
    daily_cap_hours = fields.Integer()
    timezone = fields.String()
    by_kind = fields.Dict(
        keys=fields.String(),
        values=fields.Float(),
        metadata={"description": "walk_along, team_patrol, checkpoint_tour (tasks: task:<kind>)"},
    )
    by_month = fields.List(fields.Nested(MonthSchema))


def _dates(args) -> tuple[dt.date, dt.date]:
    today = dt.datetime.now(ZoneInfo(current_app.config["SERVICE_TIMEZONE"])).date()
    last = args.get("to") or today
    first = args.get("from_") or dt.date(last.year, 1, 1)
    if first > last:
        raise Unprocessable(_("`from` must not be after `to`."))
    if (last - first).days > 3660:
        raise Unprocessable(_("The period is at most ten years."))
    return first, last


def _record(volunteer, args) -> dict:
    return service.record(
        db.session,
        volunteer,
        *_dates(args),
        cap_hours=current_app.config["SERVICE_DAILY_CAP_HOURS"],
        timezone=current_app.config["SERVICE_TIMEZONE"],
    )


@blp.route("/me/service-record")
class MyServiceRecord(MethodView):
    @blp.login_required
    @blp.arguments(RecordArgsSchema, location="query")
    @blp.response(200, ServiceRecordSchema)
    def get(self, args):
        """Your service hours by month and by kind (patrol time backed by fixes, capped daily)."""
        return _record(current_user(), args)


@blp.route("/users/<uuid:user_id>/service-record")
class VolunteerServiceRecord(MethodView):
    @blp.role_required(GRID_STAFF)
    @blp.arguments(RecordArgsSchema, location="query")
    @blp.response(200, ServiceRecordSchema)
    def get(self, args, user_id):
        """A volunteer's service hours (their home community inside your jurisdiction)."""
        volunteer = service.volunteer_for_staff(db.session, current_user(), user_id)
        return _record(volunteer, args)
