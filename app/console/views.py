"""The console's pages: sign-in, the triage queue (list and map) and a tip's page.

Views read and write through the API's services (app/tips/service.py, app/auth/service.py)
with the signed-in staff member as the actor, so jurisdiction, workflow and audit rules are the
API's own. State changes are POSTed forms (CSRF-checked in app/console/access.py) that answer a
redirect (POST/redirect/GET), or the page again with a clear message when a rule said no.
"""

from __future__ import annotations

import datetime as dt
import uuid
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import (
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_jwt_extended import decode_token
from flask_limiter.util import get_remote_address
from marshmallow import ValidationError
from sqlalchemy import func, select
from werkzeug.exceptions import TooManyRequests, UnprocessableEntity

from app.auth import login_limits, validators
from app.auth import service as auth_service
from app.console import bp
from app.console import service as console_service
from app.console.access import (
    check_csrf,
    choose_locale,
    csrf_token,
    public,
    sign_in,
    signed_in_user,
    staff_required,
    user_if_known,
)
from app.console.labels import PRIORITY_LABELS, STATUS_LABELS, event_label
from app.core import audit, geojson
from app.core.auth import GRID_STAFF, POLICE_LIAISON, has_any_role
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.i18n import SUPPORTED_LOCALES, _, language_tag
from app.core.pagination import paginate
from app.core.preconditions import etag_of
from app.extensions import db, limiter
from app.media import service as media_service
from app.storage import streamed
from app.tips import service as tips_service
from app.tips.access import may_see_tip_media
from app.tips.schemas import MergeSchema, NoteSchema, TipListArgsSchema
from geo.crs import from_wgs84

PAGE_SIZE = 25
SINCE = {"24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7), "30d": dt.timedelta(days=30)}
_LIST_FILTERS = ("status", "category", "priority")
# Moves the tip page offers, in this order.
_OFFERED = ("triaged", "assigned", "in_progress", "resolved", "rejected", "referred_to_police")


# Before any view: the reader's language, then the CSRF check of every POST.
bp.before_request(choose_locale)
bp.before_request(check_csrf)


def _tile_origin(template: str) -> str:
    """The tile server as a CSP source (" https://host"); a `{s}` subdomain becomes a
    wildcard over its parent domain, the only wildcard CSP allows."""
    tiles = urlsplit(template)
    if not tiles.netloc:
        return ""
    host = tiles.netloc
    if "{s}" in host:
        host = "*." + host.split(".", 1)[1]
    return f" {tiles.scheme}://{host}"


@bp.after_request
def _content_security_policy(response: Response) -> Response:
    """Scripts, styles and data from this server only (a cookie-signed-in page must not run
    script injected into it), images also from the tile server; no framing (clickjacking)."""
    tile_origin = _tile_origin(current_app.config["MAP_TILE_URL"])
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data:{tile_origin}; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    )
    return response


@bp.context_processor
def _template_globals():
    return {
        "csrf_token": csrf_token,
        "console_user": user_if_known(),
        "locales": SUPPORTED_LOCALES,
        "page_language": language_tag(),
        "local_time": local_time,
        "status_label": lambda s: STATUS_LABELS.get(s, s),
        "priority_label": lambda p: PRIORITY_LABELS.get(p, p),
    }


def local_time(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    zone = ZoneInfo(current_app.config["SERVICE_TIMEZONE"])
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/"):
        return url_for("console.tips")
    return target


# -- signing in and out ----------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(
    lambda: current_app.config["LOGIN_CLIENT_RATE_LIMIT"],
    key_func=lambda: f"console-login:{get_remote_address()}",
    methods=["POST"],
)
def login():
    """The sign-in form; the same accounts, limits and audit as POST /api/v1/auth/login."""
    if request.method == "GET":
        return render_template("console/login.html", next=request.args.get("next", ""))
    phone, password = request.form.get("phone", ""), request.form.get("password", "")
    try:
        # A guess at the account's password, counted in its sign-in bucket before it is
        # checked, as the API's login does for a device it does not know.
        login_limits.count_password_attempt(validators.normalize_phone(phone))
    except validators.InvalidInput:
        pass  # no account can be named so: the per-client limit above still counts it
    except TooManyRequests:
        return _login_again(_("Too many attempts; please wait a moment and try again."), 429)
    try:
        settings = auth_service.AuthSettings.from_config(current_app.config)
        pair = auth_service.login(db.session, phone, password, settings)
    except auth_service.AuthenticationFailed:
        return _login_again(_("Wrong phone number or password."), 401)
    claims = decode_token(pair.access_token)
    sign_in(claims["sub"], claims["sid"])
    return redirect(_safe_next(request.form.get("next") or _landing()), 303)


def _landing() -> str:
    """Where a sign-in without a page to return to goes: a police liaison (who has no
    queue) to the clue batches, staff to the queue."""
    user = signed_in_user()
    if user is not None and not has_any_role(user.roles, [GRID_STAFF]):
        return url_for("console.liaison")
    return url_for("console.tips")


def _login_again(message: str, status: int):
    page = render_template("console/login.html", error=message, next=request.form.get("next", ""))
    return page, status


@bp.route("/logout", methods=["POST"])
@public
def logout():
    """End the console session: its server-side login session is revoked, the cookie cleared."""
    if session.get("sid"):
        # The cookie is signed: its sid is the one sign_in wrote.
        auth_service.revoke_session(db.session, uuid.UUID(session["sid"]), "logout")
    lang = session.get("lang")
    session.clear()
    session["lang"] = lang
    flash(_("You have signed out."))
    return redirect(url_for("console.login"), 303)


@bp.route("/language", methods=["POST"])
@public
def language():
    """The page's language switch (kept in the session; Accept-Language decides without it)."""
    if request.form.get("lang") in SUPPORTED_LOCALES:
        session["lang"] = request.form["lang"]
    return redirect(_safe_next(request.form.get("next")), 303)


@bp.route("/")
@staff_required(GRID_STAFF, POLICE_LIAISON)
def home():
    return redirect(_landing(), 303)


# -- the triage queue ------------------------------------------------------------------------


def _filters() -> tuple[dict, int]:
    """The queue's filters from the query string, through the API's own list schema; empty
    fields of the form mean "any"."""
    args = request.args
    data: dict = {}
    for key in _LIST_FILTERS:
        values = [v for v in args.getlist(key) if v.strip()]
        if values:
            data[key] = values
    for key in ("area_id", "q"):
        if args.get(key, "").strip():
            data[key] = args[key].strip()
    try:
        filters = TipListArgsSchema().load(data)
        page = int(args.get("page", "1"))
    except (ValidationError, ValueError) as exc:
        raise UnprocessableEntity() from exc
    if not 1 <= page <= 100_000:
        raise UnprocessableEntity()
    since = args.get("since", "")
    if since in SINCE:
        filters["from_"] = dt.datetime.now(dt.UTC) - SINCE[since]
    elif since:
        raise UnprocessableEntity()
    return filters, page


def _queue_page(crs: str) -> dict:
    filters, page = _filters()
    query = tips_service.staff_query(
        signed_in_user(), filters, columns=tips_service.listing_columns()
    )
    result = paginate(db.session, query, scalars=False, page=page, page_size=PAGE_SIZE)
    for item in result["items"]:
        if item["lon"] is not None:
            item["lon"], item["lat"] = from_wgs84(item["lon"], item["lat"], crs)
    return result


@bp.route("/tips")
@staff_required(GRID_STAFF)
def tips():
    """Tips of the staff member's areas: filters, a list and a map."""
    result = _queue_page("wgs84")
    names = category_names()
    pages = max(1, -(-result["total"] // PAGE_SIZE))
    args = request.args.to_dict(flat=False)
    args.pop("page", None)
    return render_template(
        "console/tips.html",
        result=result,
        pages=pages,
        query_args=args,
        category_options=list(names.items()),
        category_names=names,
        area_options=[
            (str(area.id), area.name)
            for area in console_service.areas_for_filter(db.session, signed_in_user())
        ],
        statuses=STATUS_LABELS,
        priorities=PRIORITY_LABELS,
        since=SINCE,
        poll_seconds=current_app.config["CONSOLE_POLL_SECONDS"],
        tile_url=current_app.config["MAP_TILE_URL"],
        tile_crs=current_app.config["MAP_TILE_CRS"],
    )


def category_names() -> dict[str, str]:
    english = language_tag() == "en"
    return {
        c.code: c.name_en if english else c.name
        for c in tips_service.categories(db.session, include_inactive=True)
    }


@bp.route("/tips.json")
@staff_required(GRID_STAFF)
def tips_json():
    """The queue's page as JSON for the page's script (the map, and new tips by polling), in
    the base map's coordinate system (`crs`)."""
    crs = request.args.get("crs", "wgs84")
    if crs not in ("wgs84", "gcj02"):
        raise UnprocessableEntity()
    result = _queue_page(crs)
    names = category_names()
    items = [
        {
            "id": item["id"],
            "url": url_for("console.tip", tip_id=item["id"]),
            "category": names.get(item["category"], item["category"]),
            "status": item["status"],
            "status_label": str(STATUS_LABELS.get(item["status"], item["status"])),
            "priority": item["priority"],
            "priority_label": str(PRIORITY_LABELS.get(item["priority"], item["priority"])),
            "description": item["description"],
            "created_at": local_time(item["created_at"]),
            "lon": item["lon"],
            "lat": item["lat"],
        }
        for item in result["items"]
    ]
    return jsonify(items=items, total=result["total"], page=result["page"])


@bp.route("/areas.geojson")
@staff_required(GRID_STAFF)
def areas_geojson():
    """Outlines of the staff member's areas: the base layer when no tile server is set."""
    crs = request.args.get("crs", "wgs84")
    if crs not in ("wgs84", "gcj02"):
        raise UnprocessableEntity()
    collection = console_service.outlines(db.session, signed_in_user(), crs)
    return geojson.answer(collection, crs)


# -- one tip ---------------------------------------------------------------------------------


def _tip_page(tip, *, message: str | None = None, status: int = 200):
    actor = signed_in_user()
    media = tips_service.media_of(db.session, [tip.id])
    offered = [to for to in _OFFERED if to in tips_service.TRANSITIONS[tip.status]]
    position = None
    if tip.geom is not None:
        position = db.session.execute(select(func.ST_X(tip.geom), func.ST_Y(tip.geom))).one()
    page = render_template(
        "console/tip.html",
        tip=tip,
        etag=etag_of("tip", tip),
        history=tips_service.history(db.session, tip),
        duplicates=tips_service.duplicates(db.session, actor, tip),
        media=media,
        offered=offered,
        category=category_names().get(tip.category_code, tip.category_code),
        event_label=event_label,
        etag_of=etag_of,
        assignable=(
            console_service.assignable_staff(db.session, actor, tip)
            if "assigned" in offered
            else []
        ),
        position=position,
        message=message,
    )
    return page, status


@bp.route("/tips/<uuid:tip_id>")
@staff_required(GRID_STAFF)
def tip(tip_id: uuid.UUID):
    """A tip of the staff member's areas: photos, history, duplicates nearby, transitions."""
    return _tip_page(tips_service.get_for_staff(db.session, signed_in_user(), tip_id))


@bp.route("/tips/<uuid:tip_id>/transition", methods=["POST"])
@staff_required(GRID_STAFF)
def transition(tip_id: uuid.UUID):
    """Move the tip, from the version the form was read at (its ETag, as If-Match is in the
    API): a tip changed meanwhile is shown again as it is now, with a message, not changed."""
    actor = signed_in_user()
    tip = tips_service.get_for_staff(db.session, actor, tip_id, lock=True)
    if request.form.get("etag") != etag_of("tip", tip):
        return _changed_meanwhile(tip)
    note = request.form.get("note", "").strip() or None
    to = request.form.get("to", "")
    try:
        assignee = request.form.get("assignee_id", "") if to == "assigned" else ""
        tips_service.transition(
            db.session,
            actor,
            tip,
            to,
            note=note,
            public=request.form.get("public") == "on",
            assignee_id=uuid.UUID(assignee) if assignee else None,
        )
    except ValueError:
        return _tip_page(tip, message=_("Choose whom to assign the tip to."), status=422)
    except (Conflict, Unprocessable) as exc:
        # The service refuses before it changes anything; the answer's status rolls back.
        return _tip_page(tip, message=str(exc), status=exc.status)
    flash(_("The tip is now: %(status)s.", status=STATUS_LABELS.get(tip.status, tip.status)))
    return redirect(url_for("console.tip", tip_id=tip.id), 303)


def _changed_meanwhile(tip):
    """The tip's page again, as it is now, when the form was read at another version."""
    message = _(
        "Someone changed this tip while you were reading it. It is shown as it is now: "
        "check it, then choose again."
    )
    return _tip_page(tip, message=message, status=412)


@bp.route("/tips/<uuid:tip_id>/notes", methods=["POST"])
@staff_required(GRID_STAFF)
def note(tip_id: uuid.UUID):
    """Add a note to the tip's history (`public`: its reporter sees it), as the API's notes."""
    actor = signed_in_user()
    tip = tips_service.get_for_staff(db.session, actor, tip_id)
    form = {"note": request.form.get("text", ""), "public": request.form.get("public") == "on"}
    try:
        values = NoteSchema().load(form)
    except ValidationError:
        return _tip_page(tip, message=_("Write a note of 1 to 2000 characters."), status=422)
    tips_service.add_note(db.session, actor, tip, values["note"], values["public"])
    flash(_("The note was added."))
    return redirect(url_for("console.tip", tip_id=tip.id), 303)


@bp.route("/tips/<uuid:tip_id>/merge", methods=["POST"])
@staff_required(GRID_STAFF)
def merge(tip_id: uuid.UUID):
    """Merge this tip (a duplicate) into another of the staff member's areas, from the version
    read, as the API's merge with If-Match."""
    actor = signed_in_user()
    tip = tips_service.get_for_staff(db.session, actor, tip_id, lock=True)
    if request.form.get("etag") != etag_of("tip", tip):
        return _changed_meanwhile(tip)
    try:
        into = MergeSchema().load({"into": request.form.get("into", "")})["into"]
        tips_service.merge(db.session, actor, tip, into)
    except ValidationError:
        return _tip_page(tip, message=_("No such tip."), status=422)
    except (Conflict, Unprocessable) as exc:
        return _tip_page(tip, message=str(exc), status=exc.status)
    flash(_("The tip was merged into this one."))
    return redirect(url_for("console.tip", tip_id=into), 303)


@bp.route("/media/<uuid:media_id>")
@staff_required(GRID_STAFF)
def photo(media_id: uuid.UUID):
    """A tip's photo for staff of its area."""
    return _image(media_id, "full")


@bp.route("/media/<uuid:media_id>/thumbnail")
@staff_required(GRID_STAFF)
def thumbnail(media_id: uuid.UUID):
    """A tip photo's thumbnail for staff of its area."""
    return _image(media_id, "thumbnail")


def _image(media_id: uuid.UUID, variant: str) -> Response:
    """Each view goes on the audit trail, as in the API (app/media/routes.py)."""
    actor = signed_in_user()
    media = media_service.get_media(db.session, media_id)
    if media.tip_id is None or not may_see_tip_media(db.session, actor, media.tip_id):
        raise NotFound(_("No such photo."))
    audit.record(
        db.session,
        "media.viewed",
        actor=actor,
        object_type="media",
        object_ids=[media.id],
        details={"tip_id": str(media.tip_id), "variant": variant},
    )
    response = streamed(media_service.open_variant(media, variant), media.content_type)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
