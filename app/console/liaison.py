"""The police liaison's pages: clue batches (made from filters, or from areas picked on the
map), their progress while the worker builds them, their files, signature and hashes,
acknowledgement and the police's outcomes.

Everything goes through app/exports/service.py with the signed-in liaison as the actor: the
same visibility rule as GET /api/v1/clue-batches (another district's batch is "not found"),
the same audit records (creation, every download, acknowledgement, outcomes), and the same
files (reporter identity only where the reporter consented, as the API's). Liaisons see no
single tips before a batch (the API gives them none): the map shows their areas with how many
clues each grid cell had, and picking areas there narrows the batch's filters.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from marshmallow import ValidationError
from sqlalchemy import select
from werkzeug.exceptions import UnprocessableEntity

from app.areas.models import Area
from app.console import bp
from app.console import service as console_service
from app.console.access import signed_in_user, staff_required
from app.console.labels import STATUS_LABELS
from app.console.paging import page_count, page_number
from app.console.views import category_names, local_time
from app.core import geojson
from app.core.auth import POLICE_LIAISON
from app.core.errors import Conflict, Unprocessable
from app.core.i18n import _, _l, message_text
from app.core.pagination import paginate
from app.exports import service as exports_service
from app.exports import signing
from app.exports.models import OUTCOMES, ClueBatch, ClueBatchItem
from app.exports.schemas import BatchCreateSchema, OutcomesSchema
from app.extensions import db
from app.grid import service as grid_service
from app.storage import export_store, streamed
from app.tips.models import STATUSES, Tip

BATCHES_PER_PAGE = 20
ITEMS_PER_PAGE = 50
# The map's clue counts: grid cells over this many days.
COUNT_DAYS = 30
BATCH_STATUS_LABELS = {
    "pending": _l("Waiting for the worker"),
    "running": _l("Being built"),
    "ready": _l("Ready"),
    "failed": _l("Failed"),
}
OUTCOME_LABELS = {
    "case_opened": _l("Case opened"),
    "no_action": _l("No further action"),
    "false_report": _l("Unfounded report"),
    "duplicate": _l("Handled with another report"),
}
FILE_LABELS = {
    "tips.csv": _l("Table (CSV, opens in Excel/WPS)"),
    "tips.geojson": _l("Map layer (GeoJSON)"),
    "manifest.json": _l("Signed manifest"),
    "batch.zip": _l("Everything with photos (ZIP)"),
}


@bp.context_processor
def _liaison_globals():
    return {
        "batch_status_label": lambda s: BATCH_STATUS_LABELS.get(s, s),
        "outcome_label": lambda o: OUTCOME_LABELS.get(o, o),
    }


# -- the batches and the form that makes one ---------------------------------------------------


def _liaison_page(*, errors: list[str] | None = None, status: int = 200):
    actor = signed_in_user()
    result = paginate(
        db.session,
        exports_service.visible_query(actor),
        page=page_number(),
        page_size=BATCHES_PER_PAGE,
    )
    areas = console_service.areas_for_filter(db.session, actor)
    page = render_template(
        "console/liaison.html",
        result=result,
        pages=page_count(result["total"], BATCHES_PER_PAGE),
        area_options=[(str(a.id), a.name) for a in areas],
        category_options=list(category_names().items()),
        status_options=[(s, STATUS_LABELS.get(s, s)) for s in STATUSES if s != "merged"],
        form=request.form,
        errors=errors or [],
        tile_url=current_app.config["MAP_TILE_URL"],
        tile_crs=current_app.config["MAP_TILE_CRS"],
    )
    return page, status


@bp.route("/liaison")
@staff_required(POLICE_LIAISON)
def liaison():
    """The liaison's clue batches, newest first, and the form that makes a new one."""
    return _liaison_page()


def _day_start(value: str, *, days_after: int = 0) -> str | None:
    """A date of the form (local calendar day) as the instant its day starts, ISO 8601."""
    if not value.strip():
        return None
    try:
        day = dt.date.fromisoformat(value.strip()) + dt.timedelta(days=days_after)
    except (ValueError, OverflowError):  # not a date, or the day after 9999-12-31
        return value  # the schema refuses it with its own message
    zone = ZoneInfo(current_app.config["SERVICE_TIMEZONE"])
    return dt.datetime.combine(day, dt.time(), zone).isoformat()


_FIELD_LABELS = {
    "purpose": _l("Purpose"),
    "case_reference": _l("Case reference"),
    "filters": _l("Filters"),
}


def _messages(errors: Any) -> list[str]:
    """A schema's nested error messages as flat lines."""
    if isinstance(errors, dict):
        return [m for value in errors.values() for m in _messages(value)]
    if isinstance(errors, list):
        return [m for value in errors for m in _messages(value)]
    return [message_text(errors)]


def _form_errors(errors: dict[str, Any]) -> list[str]:
    """The schema's errors, each after the name of the form's field it is about."""
    return [
        f"{_FIELD_LABELS.get(field, field)}: {line}"
        for field, value in errors.items()
        for line in _messages(value)
    ]


@bp.route("/liaison/batches", methods=["POST"])
@staff_required(POLICE_LIAISON)
def create_batch():
    """Freeze a batch from the form's filters (areas typed or picked on the map, days,
    categories, statuses), with the API's schema and service: same limits, same audit."""
    form = request.form
    filters: dict[str, Any] = {
        "area_ids": [v for v in form.getlist("area_ids") if v.strip()],
        "categories": [v for v in form.getlist("categories") if v.strip()],
        "statuses": [v for v in form.getlist("statuses") if v.strip()],
    }
    start, end = _day_start(form.get("from", "")), _day_start(form.get("to", ""), days_after=1)
    if start:
        filters["from"] = start
    if end:
        filters["to"] = end
    body = {
        "filters": filters,
        "purpose": form.get("purpose", ""),
        "case_reference": form.get("case_reference", ""),
    }
    try:
        values = BatchCreateSchema().load(body)
        batch = exports_service.create_batch(
            db.session, signed_in_user(), values, max_tips=current_app.config["MAX_BATCH_TIPS"]
        )
    except ValidationError as exc:
        return _liaison_page(errors=_form_errors(exc.messages), status=422)
    except Unprocessable as exc:
        return _liaison_page(errors=[exc.detail], status=422)
    flash(
        _(
            "The batch was made with %(count)s tips; its files are being built.",
            count=batch.row_count,
        )
    )
    return redirect(url_for("console.batch", batch_id=batch.id), 303)


@bp.route("/liaison/areas.geojson")
@staff_required(POLICE_LIAISON)
def liaison_areas():
    """The liaison's areas (the base layer, and what is picked on the map), each grid cell with
    its clues of the last COUNT_DAYS days (the grid aggregate the API gives liaisons)."""
    crs = request.args.get("crs", "wgs84")
    if crs not in ("wgs84", "gcj02"):
        raise UnprocessableEntity()
    actor = signed_in_user()
    collection = console_service.outlines(db.session, actor, crs)
    end = dt.datetime.now(dt.UTC)
    args = {"cells": "admin", "resolution": 8, "crs": crs, "category": [], "status": []}
    try:
        rows = grid_service.tip_cells(
            db.session, actor, args, end - dt.timedelta(days=COUNT_DAYS), end
        )
    except Unprocessable:
        rows = []  # more cells than the aggregate answers: the outlines, without shading
    counts = {row["cell_id"]: row["total"] for row in rows}
    for feature in collection["features"]:
        if feature["properties"]["level"] == "grid_cell":
            feature["properties"]["count"] = counts.get(feature["id"], 0)
    return geojson.answer(collection, crs)


# -- one batch -----------------------------------------------------------------------------------


def _batch(batch_id: uuid.UUID) -> ClueBatch:
    return exports_service.get_batch(db.session, signed_in_user(), batch_id)


def signature_state(batch: ClueBatch) -> tuple[bool | None, str]:
    """Whether the batch's signed manifest verifies (None: no files to check), and why not.

    The manifest on disk must carry the recorded digest, its signature must verify with the
    platform's public key (the one GET /api/v1/clue-batches/signing-key publishes), and the
    tables' recorded SHA-256 (the ones shown and downloaded) must be the ones it lists."""
    if batch.status != "ready" or batch.files_deleted_at is not None:
        return None, ""
    try:
        key = exports_service.batch_prefix(batch.id) + "manifest.json"
        with export_store().open(key) as stored:
            manifest = json.loads(stored.read())
        key = signing.signing_key_from_seed(current_app.config["CLUE_SIGNING_SECRET"])
        public = signing.public_key_info(key)["public_key"]
        signing.verify_manifest(manifest, public)
        if manifest["digest"] != batch.digest:
            raise signing.ManifestError("the manifest is not the one recorded for the batch")
        listed = {entry["name"]: entry["sha256"] for entry in manifest["files"]}
        for entry in batch.files:
            if entry["name"] in listed and listed[entry["name"]] != entry["sha256"]:
                raise signing.ManifestError(f"{entry['name']}: SHA-256 differs from the manifest")
    except (OSError, ValueError, KeyError, signing.ManifestError) as exc:  # KeyError: no object
        return False, str(exc)
    return True, ""


def _items(batch: ClueBatch) -> dict[str, Any]:
    """A page of the batch's tips (what its files hold of them: code, category, time) and
    the outcome recorded for each."""
    query = (
        select(
            ClueBatchItem.position,
            ClueBatchItem.tip_id,
            Tip.code,
            Tip.category_code.label("category"),
            Tip.created_at,
            ClueBatchItem.outcome,
            ClueBatchItem.outcome_at,
        )
        .join(Tip, Tip.id == ClueBatchItem.tip_id)
        .where(ClueBatchItem.batch_id == batch.id)
        .order_by(ClueBatchItem.position)
    )
    return paginate(db.session, query, scalars=False, page=page_number(), page_size=ITEMS_PER_PAGE)


def _selection(batch: ClueBatch) -> list[tuple[str, str]]:
    """What the batch was made from, in words."""
    chosen = batch.filters or {}
    lines = []
    if chosen.get("area_ids"):
        names = db.session.scalars(
            select(Area.name).where(Area.id.in_(chosen["area_ids"])).order_by(Area.code)
        )
        lines.append((_("Areas"), "、".join(names)))
    if chosen.get("from") or chosen.get("to"):
        start, end = (
            local_time(dt.datetime.fromisoformat(chosen[key])) if chosen.get(key) else "…"
            for key in ("from", "to")
        )
        lines.append((_("Submitted"), f"{start} – {end}"))
    if chosen.get("categories"):
        names = category_names()
        lines.append((_("Categories"), "、".join(names.get(c, c) for c in chosen["categories"])))
    if chosen.get("statuses"):
        labels = (str(STATUS_LABELS.get(s, s)) for s in chosen["statuses"])
        lines.append((_("Statuses"), "、".join(labels)))
    if chosen.get("tip_ids"):
        lines.append((_("Chosen tips"), str(len(chosen["tip_ids"]))))
    return lines or [(_("Selection"), _("All tips of your areas"))]


def _batch_page(batch: ClueBatch, *, message: str | None = None, status: int = 200):
    verified, problem = signature_state(batch)
    result = _items(batch)
    page = render_template(
        "console/batch.html",
        batch=batch,
        files=[
            {**entry, "label": FILE_LABELS.get(entry["name"], entry["name"])}
            for entry in batch.files
        ],
        verified=verified,
        problem=problem,
        selection=_selection(batch),
        items=result,
        pages=page_count(result["total"], ITEMS_PER_PAGE),
        category_names=category_names(),
        outcomes=OUTCOMES,
        message=message,
    )
    return page, status


@bp.route("/liaison/batches/<uuid:batch_id>")
@staff_required(POLICE_LIAISON)
def batch(batch_id: uuid.UUID):
    """A batch: its progress, files with their sizes and SHA-256, the signature's state,
    acknowledgement, and its tips with the outcomes recorded."""
    return _batch_page(_batch(batch_id))


@bp.route("/liaison/batches/<uuid:batch_id>/progress.json")
@staff_required(POLICE_LIAISON)
def batch_progress(batch_id: uuid.UUID):
    """The batch's status and percent, for the page's script while the worker builds it."""
    found = _batch(batch_id)
    return jsonify(
        status=found.status,
        status_label=str(BATCH_STATUS_LABELS.get(found.status, found.status)),
        percent=found.percent,
        error=found.error,
    )


@bp.route("/liaison/batches/<uuid:batch_id>/files/<string:name>")
@staff_required(POLICE_LIAISON)
def batch_file(batch_id: uuid.UUID, name: str):
    """Download a file of a ready batch: the API's checks, the API's audit record."""
    actor = signed_in_user()
    found = exports_service.get_batch(db.session, actor, batch_id)
    try:
        stored = exports_service.open_file(db.session, actor, found, name)
    except Conflict as exc:
        return _batch_page(found, message=exc.detail, status=409)
    # Streamed from the store as the API streams it (a batch.zip may be a gigabyte).
    response = streamed(
        stored, "application/octet-stream", download_name=f"clue-batch-{found.id}-{name}"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/liaison/batches/<uuid:batch_id>/acknowledge", methods=["POST"])
@staff_required(POLICE_LIAISON)
def acknowledge(batch_id: uuid.UUID):
    """Confirm the police received the batch (as POST /clue-batches/{id}/acknowledge)."""
    found = _batch(batch_id)
    exports_service.acknowledge(db.session, signed_in_user(), found)
    flash(_("Receipt of the batch is confirmed."))
    return redirect(url_for("console.batch", batch_id=found.id), 303)


@bp.route("/liaison/batches/<uuid:batch_id>/outcomes", methods=["POST"])
@staff_required(POLICE_LIAISON)
def outcome(batch_id: uuid.UUID):
    """Record what became of one tip of the batch (final, as in the API)."""
    actor = signed_in_user()
    found = _batch(batch_id)
    item = {"tip_id": request.form.get("tip_id", ""), "outcome": request.form.get("outcome", "")}
    if request.form.get("note", "").strip():
        item["note"] = request.form["note"]
    try:
        values = OutcomesSchema().load({"items": [item]})
        exports_service.record_outcomes(db.session, actor, found, values["items"])
    except ValidationError:
        message = _(
            "Choose an outcome for a tip of this batch (a note of at most 2000 characters)."
        )
        return _batch_page(found, message=message, status=422)
    except (Conflict, Unprocessable) as exc:
        return _batch_page(found, message=exc.detail, status=exc.status)
    flash(_("The outcome was recorded."))
    return redirect(
        url_for("console.batch", batch_id=found.id, page=request.args.get("page", 1)), 303
    )
