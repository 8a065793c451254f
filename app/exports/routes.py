"""Clue batches for police liaisons (and staff, for their jurisdiction)."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from app.core.auth import GRID_STAFF, POLICE_LIAISON, current_user
from app.core.blueprint import Blueprint
from app.core.caching import public_data
from app.core.geojson import GEOJSON
from app.core.pagination import PageArgsSchema, page_of, paginate
from app.exports import schemas as s
from app.exports import service, signing
from app.extensions import db
from app.storage import streamed

blp = Blueprint(
    "clue_batches", __name__, url_prefix="/api/v1/clue-batches", description="Clue batches"
)


@blp.route("")
class Batches(MethodView):
    @blp.role_required(POLICE_LIAISON, GRID_STAFF)
    @blp.idempotent
    @blp.arguments(s.BatchCreateSchema)
    @blp.response(201, s.BatchSchema)
    def post(self, body):
        """Freeze a batch of tips for the police: explicit `tip_ids`, or `filters` (areas, time
        range, categories, statuses), always inside your jurisdiction; `purpose` and
        `case_reference` are required and go on the audit trail.

        Open tips move to `referred_to_police` (with history; named reporters are told). The
        files are made by a background job: poll GET /clue-batches/{id} for `status`/`percent`.
        """
        return service.create_batch(
            db.session, current_user(), body, max_tips=current_app.config["MAX_BATCH_TIPS"]
        )

    @blp.role_required(POLICE_LIAISON, GRID_STAFF)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_of(s.BatchSchema))
    def get(self, page):
        """Batches you may open (made in your role, for areas you hold), newest first."""
        return paginate(db.session, service.visible_query(current_user()), **page)


@blp.route("/signing-key")
class SigningKey(MethodView):
    @blp.public
    @public_data
    @blp.response(200, s.SigningKeySchema)
    def get(self):
        """The public key that verifies batch manifests (Ed25519), for offline checks: see
        docs/clue-batches.md for the procedure."""
        secret = current_app.config["CLUE_SIGNING_SECRET"]
        return signing.public_key_info(signing.signing_key_from_seed(secret))


@blp.route("/<uuid:batch_id>")
class BatchById(MethodView):
    @blp.role_required(POLICE_LIAISON, GRID_STAFF)
    @blp.response(200, s.BatchSchema)
    def get(self, batch_id):
        """A batch: status (pending, running, ready, failed), percent, row count, files."""
        return service.get_batch(db.session, current_user(), batch_id)


@blp.route("/<uuid:batch_id>/files/<string:name>")
class BatchFile(MethodView):
    @blp.role_required(POLICE_LIAISON, GRID_STAFF)
    @blp.response(
        200,
        description="tips.csv (UTF-8 with BOM), tips.geojson, manifest.json or batch.zip",
        content_type="application/octet-stream",
    )
    @blp.alt_response(409, response="CONFLICT")
    def get(self, batch_id, name):
        """Download a file of a ready batch (every download is on the audit trail)."""
        user = current_user()
        batch = service.get_batch(db.session, user, batch_id)
        stored = service.open_file(db.session, user, batch, name)
        mimetypes = {
            "tips.csv": "text/csv; charset=utf-8",
            "tips.geojson": GEOJSON,
            "manifest.json": "application/json",
            "batch.zip": "application/zip",
        }
        # Streamed from the store, never read whole (a batch.zip may be a gigabyte). Cache-
        # Control: no-store, like every answer with personal data (app/core/caching.py).
        return streamed(stored, mimetypes[name], download_name=f"clue-batch-{batch.id}-{name}")


@blp.route("/<uuid:batch_id>/acknowledge")
class Acknowledge(MethodView):
    @blp.role_required(POLICE_LIAISON)
    @blp.response(200, s.BatchSchema)
    def post(self, batch_id):
        """Confirm the police received the batch."""
        user = current_user()
        return service.acknowledge(db.session, user, service.get_batch(db.session, user, batch_id))


@blp.route("/<uuid:batch_id>/outcomes")
class Outcomes(MethodView):
    @blp.role_required(POLICE_LIAISON)
    @blp.idempotent
    @blp.arguments(s.OutcomesSchema)
    @blp.response(200, s.OutcomeListSchema)
    def post(self, body, batch_id):
        """What became of tips of the batch: case_opened, no_action, false_report, duplicate.

        Each outcome goes into the tip's history; its reporter's follow view shows the outcome
        in plain words, never the police's note. Outcomes are final: the same one again is a
        no-op, a different one a 409.
        """
        user = current_user()
        batch = service.get_batch(db.session, user, batch_id)
        return {"items": service.record_outcomes(db.session, user, batch, body["items"])}
