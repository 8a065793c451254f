"""The console's dispatch pages: the list of tasks, the dispatch form (from a tip or the map:
a point and a radius, an area or a team), how many volunteers it would reach, and a task's live
view.

Tasks are made and read only through app/tasks/service.py with the signed-in staff member as
the actor, and the form is loaded by the API's own `TaskCreateSchema`: the jurisdiction,
validation and withholding rules are POST /api/v1/tasks's. The reach is a count, never who
(`tasks.service.reach`, which withholds small radius counts as task statistics do). A form
sent twice (a double click, a reload of the POST) makes one task: it carries a random key
stored as an idempotency record, as the API's `Idempotency-Key` is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy import func, select
from werkzeug.exceptions import UnprocessableEntity

from app.auth.jurisdiction import in_jurisdiction, jurisdiction_of
from app.console import bp
from app.console import service as console_service
from app.console.access import signed_in_user, staff_required
from app.console.views import local_time
from app.core.auth import GRID_STAFF
from app.core.errors import DomainError, Unprocessable
from app.core.i18n import _, _l
from app.core.idempotency import IdempotencyRecord
from app.core.pagination import paginate
from app.core.preconditions import etag_of
from app.extensions import db
from app.tasks import service as tasks_service
from app.tasks.models import Task
from app.tasks.schemas import CancelSchema, TaskCreateSchema
from app.teams.models import Team
from app.tips import service as tips_service
from geo.crs import from_wgs84

PAGE_SIZE = 25
MOST_TEAMS = 200
# How long a task sent from the console stays open, in hours (the form's choices).
HOURS = (1, 2, 4, 8, 24)
MODES = ("radius", "area", "team")  # `named` needs names: the API offers it, the console not
KEY_FIELD = "request_key"
_NOT_FINGERPRINTED = ("csrf_token", KEY_FIELD)

KIND_LABELS = {
    "patrol": _l("Patrol"),
    "event_support": _l("Event support"),
    "tip_check": _l("Check a tip"),
    "urgent_assist": _l("Urgent assistance"),
    "publicity": _l("Publicity"),
}
LIFECYCLE_LABELS = {
    "open": _l("Open"),
    "filled": _l("Filled"),
    "completed": _l("Completed"),
    "expired": _l("Expired"),
    "cancelled": _l("Cancelled"),
}
MODE_LABELS = {
    "radius": _l("Around a point"),
    "area": _l("An area"),
    "team": _l("A team"),
    "named": _l("Named volunteers"),
}
RESPONSE_LABELS = {
    "accepted": _l("Accepted"),
    "arrived": _l("Arrived"),
    "completed": _l("Completed"),
    "declined": _l("Declined"),
    "no_answer": _l("No answer yet"),
}
# The form's fields as the reader knows them, for "check these fields".
FIELD_LABELS = {
    "title": _l("Title"),
    "description": _l("Description"),
    "kind": _l("Kind"),
    "location": _l("Position"),
    "radius_m": _l("Radius (metres)"),
    "area_id": _l("Area"),
    "ends_at": _l("Open for"),
    "needed": _l("Volunteers needed"),
    "tip_id": _l("Tip"),
    "targeting": _l("Who is asked"),
    "hours": _l("Open for"),
}


def _label(labels: dict, value: str | None) -> str:
    return str(labels.get(value, value or ""))


# -- the form --------------------------------------------------------------------------------


class FormError(Exception):
    """The form's values cannot make a task; `fields` names what to check."""

    def __init__(self, fields: list[str]):
        super().__init__(", ".join(fields))
        self.fields = fields


def _number(form, name: str) -> int | float | None:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    try:
        return float(raw) if name in ("lon", "lat") else int(raw)
    except ValueError:
        raise FormError([name]) from None


def _task_values(form, *, preview: bool = False) -> dict:
    """The dispatch form as TaskCreateSchema loads it (the API's request body). For a reach
    preview, what only the sending needs (a title) may still be empty."""
    mode = form.get("mode", "radius")
    if mode not in MODES:
        raise FormError(["targeting"])
    hours = _number(form, "hours") or HOURS[0]
    if hours not in HOURS:
        raise FormError(["hours"])
    body: dict = {
        "title": form.get("title", "").strip() or (_("Preview") if preview else ""),
        "kind": form.get("kind", "") or ("patrol" if preview else ""),
        "needed": _number(form, "needed"),
        "ends_at": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).isoformat(),
        "targeting": {"mode": mode},
    }
    if form.get("description", "").strip():
        body["description"] = form["description"].strip()
    if form.get("tip_id", "").strip():
        body["tip_id"] = form["tip_id"].strip()
    # The task's place: a point (any mode; radius targeting needs it), an area, or both.
    lon, lat = _number(form, "lon"), _number(form, "lat")
    if lon is not None and lat is not None:
        crs = form.get("coord_system", "wgs84")
        body["location"] = {"lon": lon, "lat": lat, "coord_system": crs}
        body["radius_m"] = _number(form, "radius_m")
    elif mode == "radius":
        raise FormError(["location"])
    if mode == "area":
        body["area_id"] = form.get("area_id", "").strip() or None
    elif mode == "team":
        body["targeting"]["team_id"] = form.get("team_id", "").strip() or None
    body = {key: value for key, value in body.items() if value is not None}
    try:
        return TaskCreateSchema().load(body)
    except ValidationError as exc:
        raise FormError(sorted(exc.messages)) from exc


def _fields_message(fields: list[str]) -> str:
    names = ", ".join(_label(FIELD_LABELS, f) for f in fields)
    return _("Check these fields: %(fields)s.", fields=names)


def _areas(actor) -> list[tuple[str, str]]:
    """The areas a task may target: those inside the jurisdiction (not the ones above it)."""
    jurisdiction = jurisdiction_of(actor)
    return [
        (str(area.id), area.name)
        for area in console_service.areas_for_filter(db.session, actor)
        if jurisdiction.covers(area.path_ids)
    ]


def _teams(actor) -> list[tuple[str, str]]:
    query = (
        select(Team.id, Team.name)
        .where(in_jurisdiction(actor, Team))
        .order_by(Team.name, Team.id)
        .limit(MOST_TEAMS)
    )
    return [(str(row.id), row.name) for row in db.session.execute(query)]


def _form_page(form: dict, *, message: str | None = None, status: int = 200):
    actor = signed_in_user()
    config = current_app.config
    page = render_template(
        "console/dispatch.html",
        form=form,
        message=message,
        kinds=KIND_LABELS,
        modes=[(m, MODE_LABELS[m]) for m in MODES],
        hours=HOURS,
        area_options=_areas(actor),
        team_options=_teams(actor),
        key=form.get(KEY_FIELD) or str(uuid.uuid4()),
        tile_url=config["MAP_TILE_URL"],
        tile_crs=config["MAP_TILE_CRS"],
        min_count_shown=config["TASK_MIN_COUNT_SHOWN"],
    )
    return page, status


def _from_tip(tip_id: str) -> dict:
    """The form filled from a tip: its place (in the base map's system), a tip-check task."""
    try:
        tip = tips_service.get_for_staff(db.session, signed_in_user(), uuid.UUID(tip_id))
    except ValueError:
        raise UnprocessableEntity() from None
    form = {"tip_id": str(tip.id), "kind": "tip_check", "mode": "radius"}
    form["title"] = _("Check tip %(code)s", code=tip.code)
    if tip.geom is not None:
        lon, lat = db.session.execute(select(func.ST_X(tip.geom), func.ST_Y(tip.geom))).one()
        crs = _map_crs()
        lon, lat = from_wgs84(lon, lat, crs)
        form.update(lon=f"{lon:.6f}", lat=f"{lat:.6f}", coord_system=crs)
    form["tip_code"] = tip.code
    return form


def _map_crs() -> str:
    config = current_app.config
    return config["MAP_TILE_CRS"] if config["MAP_TILE_URL"] else "wgs84"


@bp.route("/tasks/new")
@staff_required(GRID_STAFF)
def dispatch():
    """The dispatch form: from a tip (`?tip_id=`) or the map."""
    tip_id = request.args.get("tip_id", "").strip()
    form = _from_tip(tip_id) if tip_id else {"mode": "radius", "coord_system": _map_crs()}
    form.setdefault("radius_m", "500")
    form.setdefault("needed", "3")
    return _form_page(form)


@bp.route("/tasks/reach.json")
@staff_required(GRID_STAFF)
def reach():
    """How many volunteers the form's task would ask first: a count, no names (withheld below
    TASK_MIN_COUNT_SHOWN for a point and radius)."""
    try:
        values = _task_values(request.args, preview=True)
        answer = tasks_service.reach(
            db.session,
            signed_in_user(),
            values,
            current_app.config["TASK_MIN_COUNT_SHOWN"],
            tasks_service.TaskSettings.from_config(current_app.config),
        )
    except FormError as exc:
        return jsonify(text=_fields_message(exc.fields), count=None, below=None), 422
    except DomainError as exc:
        return jsonify(text=str(exc), count=None, below=None), exc.status
    if answer["count"] is None:
        text = _(
            "Fewer than %(n)s volunteers on duty would be asked (the exact number is not "
            "shown, so that nobody can be located).",
            n=answer["below"],
        )
    else:
        text = _("%(n)s volunteers would be asked.", n=answer["count"])
    return jsonify(text=text, count=answer["count"], below=answer["below"])


def _fingerprint(form) -> bytes:
    digest = hashlib.sha256()
    for key in sorted(k for k in form if k not in _NOT_FINGERPRINTED):
        for value in form.getlist(key):
            digest.update(f"{key}\0{value}\0".encode())
    return digest.digest()


def _sent_before(actor, key: str, fingerprint: bytes):
    """The task this form's key made already (a form sent twice), or None. The key is locked
    for the transaction, so two sendings at once make one task."""
    scope = f"console:{actor.id}"
    lock = func.pg_advisory_xact_lock(func.hashtextextended(f"{scope} {key}", 0))
    db.session.execute(select(lock))
    record = db.session.get(IdempotencyRecord, (scope, key))
    if record is None or record.expires_at <= dt.datetime.now(dt.UTC):
        return None
    if record.fingerprint != fingerprint:
        raise Unprocessable(
            _("This form was sent already, with other values: open a new dispatch form.")
        )
    return record.headers["Location"]


def _remember(actor, key: str, fingerprint: bytes, location: str) -> None:
    if record := db.session.get(IdempotencyRecord, (f"console:{actor.id}", key)):
        db.session.delete(record)  # expired: the key is free again
        db.session.flush()
    db.session.add(
        IdempotencyRecord(
            scope=f"console:{actor.id}",
            key=key,
            fingerprint=fingerprint,
            status_code=303,
            headers={"Location": location},
            body=b"",
            expires_at=dt.datetime.now(dt.UTC)
            + dt.timedelta(days=current_app.config["IDEMPOTENCY_TTL_DAYS"]),
        )
    )


@bp.route("/tasks", methods=["POST"])
@staff_required(GRID_STAFF)
def send_task():
    """Send the task, through the API's schema and service; a refusal is the form again with
    a message, and nothing is made (the answer's status rolls the transaction back)."""
    actor = signed_in_user()
    form = request.form
    key = form.get(KEY_FIELD, "")
    try:
        uuid.UUID(key)
    except ValueError:
        return _form_page(form.to_dict(), message=_fields_message(["targeting"]), status=422)
    fingerprint = _fingerprint(form)
    try:
        sent = _sent_before(actor, key, fingerprint)
        if sent is not None:
            flash(_("This task was sent already; here it is."))
            return redirect(sent, 303)
        task_row = tasks_service.create(db.session, actor, _task_values(form))
    except FormError as exc:
        return _form_page(form.to_dict(), message=_fields_message(exc.fields), status=422)
    except DomainError as exc:
        return _form_page(form.to_dict(), message=str(exc), status=exc.status)
    location = url_for("console.task", task_id=task_row.id)
    _remember(actor, key, fingerprint, location)
    flash(_("The task was sent."))
    return redirect(location, 303)


# -- tasks -----------------------------------------------------------------------------------


@bp.route("/tasks")
@staff_required(GRID_STAFF)
def tasks():
    """Tasks of the staff member's areas, newest first."""
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        raise UnprocessableEntity() from None
    if not 1 <= page <= 100_000:
        raise UnprocessableEntity()
    query = tasks_service.list_query(signed_in_user(), {})
    result = paginate(db.session, query, page=page, page_size=PAGE_SIZE)
    now = dt.datetime.now(dt.UTC)
    return render_template(
        "console/tasks.html",
        result=result,
        pages=max(1, -(-result["total"] // PAGE_SIZE)),
        lifecycle=lambda t: _label(LIFECYCLE_LABELS, t.lifecycle(now)),
        kind_label=lambda k: _label(KIND_LABELS, k),
        mode_label=lambda m: _label(MODE_LABELS, m),
    )


def _live(task_row: Task) -> dict:
    """What the live view shows: the task's state and its statistics (as GET
    /api/v1/tasks/{id} answers them; counts withheld while a small radius task is unanswered)."""
    statistics = tasks_service.statistics(
        db.session, task_row, current_app.config["TASK_MIN_COUNT_SHOWN"]
    )
    lifecycle = task_row.lifecycle(dt.datetime.now(dt.UTC))
    responses = statistics["responses"]
    deliveries = statistics["deliveries"]
    withheld = statistics["recipients"] is None
    return {
        # The version these figures show: the cancel form follows it as the page refreshes.
        "etag": etag_of("task", task_row),
        "status": lifecycle,
        "status_label": _label(LIFECYCLE_LABELS, lifecycle),
        "needed": task_row.needed,
        "accepted": task_row.accepted,
        "completed": task_row.completed,
        "withheld": withheld,
        "recipients": (
            _("fewer than %(n)s", n=statistics["recipients_below"])
            if withheld
            else statistics["recipients"]
        ),
        "sent": sum(n for status, n in deliveries.items() if status in ("sent", "logged")),
        "received": statistics.get("received") or 0,
        "responses": {
            key: responses.get(key, 0)
            for key in ("accepted", "arrived", "completed", "declined", "no_answer")
        },
        "volunteers": [
            {
                "name": row["real_name"],
                "response": _label(RESPONSE_LABELS, row["response"]),
                "accepted_at": local_time(row["accepted_at"]),
                "arrived_at": local_time(row["arrived_at"]),
                "completed_at": local_time(row["completed_at"]),
            }
            for row in statistics["volunteers"]
        ],
    }


def _task_page(task_row: Task, *, message: str | None = None, status: int = 200):
    live = _live(task_row)
    page = render_template(
        "console/task.html",
        task=task_row,
        live=live,
        etag=etag_of("task", task_row),
        cancellable=live["status"] in tasks_service.ACTIVE,
        kind_label=_label(KIND_LABELS, task_row.kind),
        mode_label=_label(MODE_LABELS, task_row.targeting_mode),
        message=message,
        poll_seconds=current_app.config["CONSOLE_POLL_SECONDS"],
    )
    return page, status


@bp.route("/tasks/<uuid:task_id>")
@staff_required(GRID_STAFF)
def task(task_id: uuid.UUID):
    """A task of the staff member's areas, live: answers, deliveries, arrivals, completions."""
    return _task_page(tasks_service.managed(db.session, signed_in_user(), task_id))


@bp.route("/tasks/<uuid:task_id>/cancel", methods=["POST"])
@staff_required(GRID_STAFF)
def cancel_task(task_id: uuid.UUID):
    """Cancel the task from the version the page was read at (its ETag, as If-Match is in
    POST /api/v1/tasks/{id}/cancel); those who accepted are told."""
    task_row = tasks_service.managed(db.session, signed_in_user(), task_id)
    db.session.refresh(task_row, with_for_update=True)
    if request.form.get("etag") != etag_of("task", task_row):
        message = _(
            "Someone changed this task while you were reading it. It is shown as it is now: "
            "check it, then choose again."
        )
        return _task_page(task_row, message=message, status=412)
    try:
        values = CancelSchema().load({"reason": request.form.get("reason", "").strip() or None})
    except ValidationError:
        message = _("Write a reason of at most 500 characters.")
        return _task_page(task_row, message=message, status=422)
    tasks_service.cancel(db.session, task_row, values.get("reason"))
    flash(_("The task was cancelled; those who accepted it are told."))
    return redirect(url_for("console.task", task_id=task_row.id), 303)


@bp.route("/tasks/<uuid:task_id>.json")
@staff_required(GRID_STAFF)
def task_json(task_id: uuid.UUID):
    """The live view's figures, for the page's script (polled, no reload)."""
    task_row = tasks_service.managed(db.session, signed_in_user(), task_id)
    return jsonify(_live(task_row))
