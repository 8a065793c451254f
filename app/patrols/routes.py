"""Patrols and their check-ins; checkpoints; patrol coverage for staff."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app, json
from flask.views import MethodView
from geoalchemy2.shape import to_shape

from app.core import audit, geojson, preconditions
from app.core.auth import GRID_STAFF, VOLUNTEER, current_user
from app.core.blueprint import Blueprint
from app.core.db import in_transaction, one_statement
from app.core.geojson import GEOJSON, CellFeatureCollectionSchema
from app.core.pagination import PageArgsSchema, page_of, paginate
from app.core.periods import period
from app.core.preconditions import versioned
from app.core.replica import heavy_read
from app.extensions import db
from app.patrols import checkpoints, coverage, ingest, service
from app.patrols import schemas as s
from app.patrols.models import Checkpoint, Patrol
from geo.crs import from_wgs84, geometry_from_wgs84
from geo.geojson import to_geojson

patrols_blp = Blueprint(
    "patrols", __name__, url_prefix="/api/v1/patrols", description="Patrols and check-ins"
)
checkpoints_blp = Blueprint(
    "checkpoints", __name__, url_prefix="/api/v1/checkpoints", description="Checkpoints"
)
coverage_blp = Blueprint(
    "coverage", __name__, url_prefix="/api/v1/coverage", description="Patrol coverage (staff)"
)


def _period(args: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    """`from`..`to` (default: the last 7 days), at most 92 days."""
    return period(args, default_days=7, max_days=92)


def _settings() -> service.PatrolSettings:
    return service.PatrolSettings.from_config(current_app.config)


# -- patrols -------------------------------------------------------------------------------------


def _patrol_item(patrol: Patrol) -> dict[str, Any]:
    item = {name: getattr(patrol, name) for name in _PATROL_ATTRIBUTES}
    item["service_hours"] = round(patrol.credited_seconds / 3600, 2)
    return item


_PATROL_ATTRIBUTES = [n for n in s.PatrolSchema().fields if hasattr(Patrol, n)]


@patrols_blp.route("")
class Patrols(MethodView):
    @patrols_blp.role_required(VOLUNTEER)
    @patrols_blp.idempotent
    @patrols_blp.arguments(s.PatrolCreateSchema)
    @patrols_blp.response(201, s.PatrolSchema)
    @patrols_blp.alt_response(200, schema=s.PatrolSchema, description="the same id again")
    def post(self, body):
        """Start a patrol (one at a time). A phone offline sends its own `id` and `started_at`."""
        patrol, created = service.start(db.session, current_user(), body, _settings())
        return _patrol_item(patrol), 201 if created else 200

    @patrols_blp.login_required
    @patrols_blp.arguments(s.PatrolQueryArgsSchema, location="query")
    @patrols_blp.arguments(PageArgsSchema, location="query")
    @patrols_blp.response(200, page_of(s.PatrolSchema))
    def get(self, args, page):
        """Your patrols; staff: the patrols inside your jurisdiction (`mine=true`: your own)."""
        query = service.list_query(db.session, current_user(), args)
        result = paginate(db.session, query, **page)
        result["items"] = [_patrol_item(p) for p in result["items"]]
        return result


@patrols_blp.route("/<uuid:patrol_id>")
class PatrolById(MethodView):
    @patrols_blp.login_required
    @patrols_blp.arguments(s.TrackArgsSchema, location="query")
    @patrols_blp.response(200, s.PatrolDetailSchema)
    def get(self, args, patrol_id):
        """One patrol with its simplified track (yours; staff: inside your jurisdiction).

        A staff member's read of someone's track is recorded in the audit trail.
        """
        user = current_user()
        patrol = service.visible_patrol(db.session, user, patrol_id)
        if patrol.volunteer_id != user.id:
            audit.record(
                db.session,
                "patrol.read",
                actor=user,
                object_type="patrol",
                object_ids=[patrol.id],
                details={"volunteer_id": str(patrol.volunteer_id)},
            )
        item = _patrol_item(patrol)
        if patrol.status == "active":
            # Under way: distance and time so far, not the zeros stored until it ends.
            track, item["distance_m"], credited = service.live_summary(
                db.session, patrol, _settings()
            )
            item["service_hours"] = round(credited / 3600, 2)
        else:
            track = service.track_of(db.session, patrol)
        item["track"] = to_geojson(geometry_from_wgs84(track, args["crs"])) if track else None
        return item


@patrols_blp.route("/<uuid:patrol_id>/end")
class EndPatrol(MethodView):
    @patrols_blp.role_required(VOLUNTEER)
    @patrols_blp.idempotent
    @patrols_blp.arguments(s.PatrolEndSchema)
    @patrols_blp.response(200, s.PatrolSchema)
    def post(self, body, patrol_id):
        """End your patrol (ending it again changes nothing); its summary is computed."""
        patrol = service.own_patrol(db.session, current_user(), patrol_id, lock=True)
        ended = service.end(db.session, patrol, body.get("ended_at"), settings=_settings())
        return _patrol_item(ended)


@patrols_blp.route("/<uuid:patrol_id>/checkins")
class CheckIns(MethodView):
    @one_statement
    @patrols_blp.role_required(VOLUNTEER)
    @patrols_blp.arguments(s.CheckInBatchSchema)
    @patrols_blp.response(200, s.CheckInResultSchema)
    def post(self, body, patrol_id):
        """Send one check-in, or a batch of up to 500 (`items`) from a phone that was offline.

        Each item is answered in request order: `accepted` (possibly with `flags`),
        `duplicate` (its `client_id` was stored already: replaying a batch changes nothing) or
        `rejected` with a `reason`; one bad item never loses the others. A fix inside a
        checkpoint's radius, or a valid QR/NFC scan inside it, is a visit (`visits`).
        """
        # Usually one read and one statement, without BEGIN/COMMIT (app/core/db.py); the locked
        # way in a transaction when that one statement cannot do it all (ingest.ingest).
        settings = _settings()
        patrol = service.own_patrol(db.session, current_user(), patrol_id, lock=False)
        answers = ingest.ingest(db.session, patrol, body["items"], settings, optimistic=True)
        if answers is None:
            in_transaction(db.session)
            patrol = service.own_patrol(db.session, current_user(), patrol_id, lock=True)
            answers = ingest.ingest(db.session, patrol, body["items"], settings)
        if patrol.status == "ended" and any(a["outcome"] == "accepted" for a in answers):
            service.summarise(db.session, patrol, settings)
        # Serialised here rather than by the schema: on the busiest path, dumping 500 answers
        # through marshmallow costs more than storing them. The schema stays the contract.
        return current_app.response_class(
            json.dumps({"items": answers}, default=str), mimetype="application/json"
        )


# -- checkpoints ---------------------------------------------------------------------------------


def _checkpoint_item(checkpoint: Checkpoint, crs: str = "wgs84") -> dict[str, Any]:
    point = to_shape(checkpoint.geom)
    lon, lat = from_wgs84(point.x, point.y, crs)
    item = {name: getattr(checkpoint, name) for name in _CHECKPOINT_ATTRIBUTES}
    item.update(lon=round(lon, 7), lat=round(lat, 7))
    return item


_CHECKPOINT_ATTRIBUTES = [
    n for n in s.CheckpointSchema().fields if hasattr(Checkpoint, n) and n not in ("lon", "lat")
]


@checkpoints_blp.route("")
class Checkpoints(MethodView):
    @checkpoints_blp.role_required(GRID_STAFF)
    @checkpoints_blp.arguments(s.CheckpointCreateSchema)
    @checkpoints_blp.response(201, s.CheckpointSchema)
    def post(self, body):
        """Create a checkpoint inside your jurisdiction (point, radius, optional schedule)."""
        return _checkpoint_item(checkpoints.create(db.session, current_user(), body))

    @checkpoints_blp.login_required
    @checkpoints_blp.arguments(s.CheckpointQueryArgsSchema, location="query")
    @checkpoints_blp.arguments(PageArgsSchema, location="query")
    @checkpoints_blp.response(200, page_of(s.CheckpointSchema))
    def get(self, args, page):
        """Checkpoints: staff, of your jurisdiction; volunteers, active ones in `bbox`/`area_id`."""
        query = checkpoints.list_query(current_user(), args)
        result = paginate(db.session, query, **page)
        result["items"] = [_checkpoint_item(c, args["crs"]) for c in result["items"]]
        return result


@checkpoints_blp.route("/compliance")
class Compliance(MethodView):
    @checkpoints_blp.role_required(GRID_STAFF)
    @checkpoints_blp.arguments(s.ComplianceArgsSchema, location="query")
    @checkpoints_blp.arguments(PageArgsSchema, location="query")
    @checkpoints_blp.response(200, page_of(s.ComplianceSchema))
    @heavy_read
    def get(self, args, page):
        """Scheduled windows visited vs missed per checkpoint of your jurisdiction, most missed
        first (windows starting in `from`..`to`, as the missed-window job judged them)."""
        start, end = _period(args)
        query = checkpoints.compliance_query(current_user(), args, start, end)
        return paginate(db.session, query, scalars=False, **page)


@checkpoints_blp.route("/<uuid:checkpoint_id>")
class CheckpointById(MethodView):
    @checkpoints_blp.login_required
    @versioned(checkpoints_blp)
    @checkpoints_blp.arguments(s.TrackArgsSchema, location="query")
    @checkpoints_blp.response(200, s.CheckpointSchema)
    def get(self, args, checkpoint_id):
        """One checkpoint. Its ETag goes back as If-Match when staff change it."""
        checkpoint = checkpoints.visible(db.session, current_user(), checkpoint_id)
        preconditions.tag("checkpoint", checkpoint)
        return _checkpoint_item(checkpoint, args["crs"])

    @checkpoints_blp.role_required(GRID_STAFF)
    @versioned(checkpoints_blp, edit=True, read_by="GET /checkpoints/{checkpoint_id}")
    @checkpoints_blp.arguments(s.CheckpointUpdateSchema)
    @checkpoints_blp.response(200, s.CheckpointSchema)
    def patch(self, body, checkpoint_id):
        """Change a checkpoint of your jurisdiction; send the ETag you read as `If-Match`."""
        actor = current_user()
        checkpoint = checkpoints.managed(db.session, actor, checkpoint_id)
        preconditions.require("checkpoint", checkpoint)
        checkpoint = checkpoints.update(db.session, actor, checkpoint, body)
        preconditions.tag("checkpoint", checkpoint)
        return _checkpoint_item(checkpoint)


@checkpoints_blp.route("/<uuid:checkpoint_id>/code")
class CheckpointCode(MethodView):
    @checkpoints_blp.role_required(GRID_STAFF)
    @checkpoints_blp.response(200, s.CheckpointCodeSchema)
    def get(self, checkpoint_id):
        """The code to print as a QR code or write to an NFC tag."""
        checkpoint = checkpoints.managed(db.session, current_user(), checkpoint_id)
        return checkpoints.code_of(checkpoint)


@checkpoints_blp.route("/<uuid:checkpoint_id>/code/rotate")
class RotateCode(MethodView):
    @checkpoints_blp.role_required(GRID_STAFF)
    @checkpoints_blp.response(200, s.CheckpointCodeSchema)
    def post(self, checkpoint_id):
        """A new code: scans of the old one stop counting at once."""
        checkpoint = checkpoints.managed(db.session, current_user(), checkpoint_id)
        return checkpoints.code_of(checkpoints.rotate_code(db.session, checkpoint))


@checkpoints_blp.route("/<uuid:checkpoint_id>/visits")
class CheckpointVisits(MethodView):
    @checkpoints_blp.role_required(GRID_STAFF)
    @checkpoints_blp.arguments(s.TimeRangeArgsSchema, location="query")
    @checkpoints_blp.arguments(PageArgsSchema, location="query")
    @checkpoints_blp.response(200, page_of(s.CheckpointVisitSchema))
    def get(self, args, page, checkpoint_id):
        """Counted visits of a checkpoint of your jurisdiction, newest first."""
        checkpoint = checkpoints.managed(db.session, current_user(), checkpoint_id)
        start, end = _period(args)
        query = checkpoints.visits_query(checkpoint, start, end)
        return paginate(db.session, query, scalars=False, **page)


# -- coverage ------------------------------------------------------------------------------------


@coverage_blp.route("/cells")
class CoverageCells(MethodView):
    @coverage_blp.role_required(GRID_STAFF)
    @coverage_blp.arguments(s.CellsArgsSchema, location="query")
    @coverage_blp.response(200, CellFeatureCollectionSchema, content_type=GEOJSON)
    @heavy_read
    def get(self, args):
        """Patrolled cells of your jurisdiction in `from`..`to` (default the last 7 days):
        patrol minutes, distinct patrollers, check-ins, last patrolled; admin grid cells or H3
        cells (`cells=hex&resolution=`)."""
        start, end = _period(args)
        max_gap_minutes = current_app.config["SERVICE_MAX_GAP_MINUTES"]
        return geojson.answer(
            coverage.cells(
                db.session, current_user(), args, start, end, max_gap_minutes=max_gap_minutes
            ),
            args["crs"],
        )


@coverage_blp.route("/gaps")
class CoverageGaps(MethodView):
    @coverage_blp.role_required(GRID_STAFF)
    @coverage_blp.arguments(s.GapsArgsSchema, location="query")
    @coverage_blp.response(200, CellFeatureCollectionSchema, content_type=GEOJSON)
    @heavy_read
    def get(self, args):
        """Cells of your jurisdiction not patrolled for `hours` (default 24), longest first."""
        now = dt.datetime.now(dt.UTC)
        return geojson.answer(coverage.gaps(db.session, current_user(), args, now), args["crs"])
