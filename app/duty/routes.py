"""The volunteer's duty status: on or off duty, and the position held for dispatch."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app
from flask.views import MethodView
from geoalchemy2.shape import to_shape

from app.core.auth import VOLUNTEER, current_user
from app.core.blueprint import Blueprint
from app.duty import schemas as s
from app.duty import service
from app.duty.models import DutyStatus
from app.extensions import db
from geo.crs import from_wgs84

# Its operations stay under the tag they had while duty was part of tasks: clients generated
# from the OpenAPI document (openapi-python-client groups by tag) keep their names.
blp = Blueprint(
    "duty",
    __name__,
    url_prefix="/api/v1/me",
    description="Your duty status",
    doc_tag="my_tasks",
)


@blp.route("/duty")
class Duty(MethodView):
    @blp.role_required(VOLUNTEER)
    @blp.arguments(s.DutySchema)
    @blp.arguments(s.DutyArgsSchema, location="query")
    @blp.response(200, s.DutyStateSchema)
    def put(self, body, args):
        """Go on or off duty; while on duty (and only with the location-sharing consent) send
        your position as heartbeats. Off duty, the position is erased. The answer shows the
        position the server now holds, in `crs`."""
        duty = service.set_duty(db.session, current_user(), body["on_duty"], body.get("location"))
        return _duty_state(duty, args["crs"])

    @blp.role_required(VOLUNTEER)
    @blp.arguments(s.DutyArgsSchema, location="query")
    @blp.response(200, s.DutyStateSchema)
    def get(self, args):
        """Your duty status, with the position the server holds for dispatch (in `crs`), so
        the app can show what it shares."""
        return _duty_state(db.session.get(DutyStatus, current_user().id), args["crs"])


def _duty_state(duty: DutyStatus | None, crs: str) -> dict[str, Any]:
    if duty is None:
        return {
            "on_duty": False,
            "since": None,
            "position": None,
            "position_at": None,
            "position_expires_at": None,
        }
    expires = (
        duty.position_at + dt.timedelta(minutes=current_app.config["DUTY_POSITION_MINUTES"])
        if duty.position_at
        else None
    )
    position = None
    if duty.geom is not None:
        point = to_shape(duty.geom)
        lon, lat = from_wgs84(point.x, point.y, crs)
        position = {"lon": lon, "lat": lat, "crs": crs}
    return {
        "on_duty": True,
        "since": duty.since,
        "position": position,
        "position_at": duty.position_at,
        "position_expires_at": expires,
    }
