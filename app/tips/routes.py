"""Tips: submit (named or anonymous), follow by code, staff triage; categories; my tips."""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import current_app, request, url_for
from flask.views import MethodView
from geoalchemy2.shape import to_shape

from app.auth.models import User
from app.core import audit, fastjson, geojson, preconditions
from app.core.auth import (
    ADMIN,
    GRID_STAFF,
    current_identity,
    current_roles,
    current_user,
    optional_user,
)
from app.core.blueprint import Blueprint
from app.core.caching import public_data
from app.core.errors import NotFound
from app.core.geojson import GEOJSON, wants_geojson
from app.core.i18n import _
from app.core.pagination import PageArgsSchema, page_of, paginate
from app.core.preconditions import versioned
from app.extensions import anonymous_bucket, db, limiter
from app.tips import schemas as s
from app.tips import service
from app.tips.models import Tip
from geo.crs import from_wgs84, to_wgs84

tips_blp = Blueprint("tips", __name__, url_prefix="/api/v1/tips", description="Tips (clues)")
categories_blp = Blueprint(
    "tip_categories", __name__, url_prefix="/api/v1/tip-categories", description="Tip categories"
)
my_tips_blp = Blueprint(
    "my_tips", __name__, url_prefix="/api/v1/me/tips", description="The caller's own named tips"
)

FOLLOW_SECRET_HEADER = "X-Follow-Secret"  # noqa: S105 - a header name


# -- helpers -------------------------------------------------------------------------------------


def _wants_anonymity() -> bool:
    """An anonymous submission: no token, or a token with `"anonymous": true` in the body."""
    if not current_identity():
        return True
    body = request.get_json(silent=True)
    return isinstance(body, dict) and body.get("anonymous") is True


def _sender_bucket() -> str:
    return anonymous_bucket() if _wants_anonymity() else f"user:{current_identity()}"


def _submission_scope() -> str:
    """Idempotency keys of anonymous submissions are not filed under the account of a token
    that came with them: the record would link the account to the anonymous tip."""
    return "anonymous" if _wants_anonymity() else f"user:{current_identity()}"


def _follow_secret(tip_id: uuid.UUID) -> str:
    return service.follow_secret(tip_id, current_app.config["TIP_FOLLOW_KEY"])


def _follow(code: str) -> Tip:
    """The anonymous tip of `code`, with the secret its follower sent (a 404 otherwise)."""
    secret = request.headers.get(FOLLOW_SECRET_HEADER)
    return service.follow(db.session, code, secret, follow_key=current_app.config["TIP_FOLLOW_KEY"])


def _without_secret(body: bytes) -> bytes:
    document = json.loads(body)
    document["follow_secret"] = None
    return json.dumps(document).encode()


def _with_secret(body: bytes) -> bytes:
    """A replayed anonymous submission gets its follow secret back (derived, never stored)."""
    document = json.loads(body)
    if document.get("follow_code"):
        tip = db.session.get(Tip, uuid.UUID(document["id"]))
        document["follow_secret"] = _follow_secret(tip.id) if tip else None
    return json.dumps(document).encode()


def _location(tip: Tip, crs: str = "wgs84") -> dict[str, float] | None:
    if tip.geom is None:
        return None
    point = to_shape(tip.geom)
    lon, lat = from_wgs84(point.x, point.y, crs)
    return {"lon": round(lon, 7), "lat": round(lat, 7), "accuracy_m": tip.accuracy_m}


def _media_refs(media) -> list[dict[str, Any]]:
    return [
        {
            "id": m.id,
            "url": url_for("media.Photo", media_id=m.id),
            "thumbnail_url": url_for("media.Thumbnail", media_id=m.id),
            "width": m.width,
            "height": m.height,
            "sha256": m.sha256,
        }
        for m in media
    ]


_TIP_ATTRIBUTES = [name for name in s.TipSchema().fields if hasattr(Tip, name)]


def _staff_item(tip: Tip, crs: str) -> dict[str, Any]:
    item = {name: getattr(tip, name) for name in _TIP_ATTRIBUTES}
    item.update(category_code=tip.category_code, location=_location(tip, crs))
    return item


def _listed_item(row, crs: str) -> dict[str, Any]:
    """A row of `service.listing_columns()` as TipSchema dumps it (its fields only, in its
    order), its location in `crs`."""
    item = {name: row.get(name) for name in _TIP_FIELDS}
    lon = row["lon"]
    if lon is not None:
        lon, lat = from_wgs84(lon, row["lat"], crs)
        accuracy_m = row["accuracy_m"]
        item["location"] = {"lon": round(lon, 7), "lat": round(lat, 7), "accuracy_m": accuracy_m}
    return item


def _pop_position(properties: dict[str, Any]) -> list[float] | None:
    """A listed tip's [lon, lat] taken out of its properties; None for a tip with an address
    only (it is left off the map)."""
    location = properties.pop("location")
    return None if location is None else [location["lon"], location["lat"]]


_TIP_FIELDS = tuple(s.TipSchema().fields)


def _detail(tip: Tip, crs: str) -> dict[str, Any]:
    session = db.session
    item = _staff_item(tip, crs)
    item["media"] = _media_refs(service.media_of(session, [tip.id]))
    item["history"] = service.history(session, tip)
    item["duplicates"] = service.duplicates(session, current_user(), tip)
    return item


# -- submitting and following --------------------------------------------------------------------


@tips_blp.route("")
class Tips(MethodView):
    decorators = (
        limiter.limit(
            lambda: current_app.config["TIP_RATE_LIMIT"], key_func=_sender_bucket, methods=["POST"]
        ),
    )

    @tips_blp.public
    @tips_blp.idempotent(scope=_submission_scope, stored=_without_secret, replayed=_with_secret)
    @tips_blp.arguments(s.TipCreateSchema)
    @tips_blp.response(201, s.TipCreatedSchema)
    def post(self, body):
        """Report something: a category, what you saw, where, and up to 6 photos.

        Without a token, or with `anonymous: true`, the tip is anonymous: no account, address,
        user agent or device id is kept with it, in the database or the logs. The answer then
        carries `follow_code` and `follow_secret` (shown once; keep them) for
        GET /tips/follow/{code}. With a token, the tip is yours (GET /me/tips). Send an
        `Idempotency-Key` (a random UUID) so a retry cannot file it twice.
        """
        user = optional_user()
        anonymous = user is None or body.get("anonymous")
        tip = service.submit(db.session, None if anonymous else user, body, uploader=user)
        return {
            "id": tip.id,
            "status": tip.status,
            "created_at": tip.created_at,
            "follow_code": tip.code if tip.anonymous else None,
            "follow_secret": _follow_secret(tip.id) if tip.anonymous else None,
        }

    @tips_blp.role_required(GRID_STAFF)
    @tips_blp.arguments(s.TipListArgsSchema, location="query")
    @tips_blp.arguments(PageArgsSchema, location="query")
    @tips_blp.response(200, page_of(s.TipSchema))
    @tips_blp.alt_response(
        200,
        schema=s.TipFeatureCollectionSchema,
        description="As a GeoJSON FeatureCollection",
        content_type=GEOJSON,
        success=True,
    )
    def get(self, args, page):
        """Tips inside your jurisdiction, newest first, with filters.

        Repeat `status`, `category` and `priority` for several values; `from`/`to` bound the
        submission time; `area_id` narrows to one area; `bbox` to a box; `q` searches the
        description and address. With `f=geojson` (or `Accept: application/geo+json`), the page is a
        FeatureCollection (tips without a position are left out of it).
        """
        # Rows, not Tip objects, written by orjson: TipSchema's shape without marshmallow
        # dumping each field of each tip (tests/tips/test_fast_answers.py holds them equal).
        query = service.staff_query(current_user(), args, columns=service.listing_columns())
        result = paginate(db.session, query, scalars=False, **page)
        items = [_listed_item(row, args["crs"]) for row in result["items"]]
        if wants_geojson():
            collection = geojson.point_collection(items, _pop_position)
            collection.update(page=result["page"], total=result["total"])
            return geojson.answer(collection, args["crs"])
        return fastjson.answer({**result, "items": items})


@tips_blp.route("/nearby")
class Nearby(MethodView):
    decorators = (
        limiter.limit(lambda: current_app.config["NEARBY_RATE_LIMIT"], key_func=anonymous_bucket),
    )

    @tips_blp.public
    @tips_blp.arguments(s.NearbyArgsSchema, location="query")
    @tips_blp.response(200, s.NearbyListSchema)
    def get(self, args):
        """Up to 5 open tips of a category near a place, within the category's duplicate
        radius and window: "is this what you saw?" before submitting.

        Only category, status, the hour and a distance band are shown: no id, text or place.
        Categories about people (suspicious persons, theft, drugs, fraud, disputes, other) need
        a token (401 without); rate-limited per sender.
        """
        lon, lat = to_wgs84(args["lon"], args["lat"], args["coord_system"])
        return {
            "items": service.nearby_open(
                db.session, lon, lat, args["category"], signed_in=optional_user() is not None
            )
        }


def _follow_view(tip: Tip) -> dict[str, Any]:
    target = service.effective(db.session, tip)
    return {
        "code": tip.code,
        "category_code": tip.category_code,
        "status": target.status,
        "created_at": tip.created_at,
        "status_changed_at": target.status_changed_at,
        "merged": tip.merged_into_id is not None,
        "history": service.public_history(db.session, tip),
    }


_FOLLOW_SECRET_DOC = {
    "parameters": [
        {
            "in": "header",
            "name": FOLLOW_SECRET_HEADER,
            "required": True,
            "schema": {"type": "string"},
            "description": "the follow secret given when the tip was submitted",
        }
    ]
}


def _follow_limit():
    return limiter.limit(lambda: current_app.config["FOLLOW_RATE_LIMIT"], key_func=_sender_bucket)


@tips_blp.route("/follow/<string:code>")
class Follow(MethodView):
    decorators = (_follow_limit(),)

    @tips_blp.public
    @tips_blp.doc(**_FOLLOW_SECRET_DOC)
    @tips_blp.response(200, s.FollowViewSchema)
    def get(self, code):
        """An anonymous tip's status and public notes, by its code and secret.

        Unknown codes and wrong secrets are the same 404. A merged tip shows the status of
        the tip it joined.
        """
        tip = _follow(code)
        return _follow_view(tip)


@tips_blp.route("/follow/<string:code>/information")
class FollowInformation(MethodView):
    decorators = (_follow_limit(),)

    @tips_blp.public
    @tips_blp.doc(**_FOLLOW_SECRET_DOC)
    @tips_blp.idempotent(scope=lambda: "anonymous")
    @tips_blp.arguments(s.InfoSchema)
    @tips_blp.response(201, s.FollowViewSchema)
    def post(self, body, code):
        """Add to your anonymous tip while it is open: more text, more photos (uploaded
        without a token)."""
        tip = _follow(code)
        service.add_information(db.session, tip, body["note"], body["media_ids"], None)
        return _follow_view(tip)


# -- staff ---------------------------------------------------------------------------------------


@tips_blp.route("/<uuid:tip_id>")
class TipById(MethodView):
    @tips_blp.role_required(GRID_STAFF)
    @versioned(tips_blp)
    @tips_blp.arguments(s.CrsArgsSchema, location="query")
    @tips_blp.response(200, s.TipDetailSchema)
    def get(self, args, tip_id):
        """A tip of your jurisdiction with its photos, history and duplicates. Its ETag goes
        back as If-Match on edits, transitions and merges."""
        tip = service.get_for_staff(db.session, current_user(), tip_id)
        preconditions.tag("tip", tip)
        return _detail(tip, args["crs"])

    @tips_blp.role_required(GRID_STAFF)
    @versioned(tips_blp, edit=True, read_by="GET /tips/{tip_id}")
    @tips_blp.arguments(s.TipUpdateSchema)
    @tips_blp.response(200, s.TipSchema)
    def patch(self, body, tip_id):
        """Correct a tip's category or priority."""
        actor = current_user()
        tip = service.get_for_staff(db.session, actor, tip_id, lock=True)
        preconditions.require("tip", tip)
        tip = service.edit(db.session, actor, tip, body)
        preconditions.tag("tip", tip)
        return _staff_item(tip, "wgs84")


@tips_blp.route("/<uuid:tip_id>/public-summary")
class PublicSummary(MethodView):
    @tips_blp.role_required(GRID_STAFF)
    @versioned(tips_blp, edit=True, read_by="GET /tips/{tip_id}")
    @tips_blp.arguments(s.PublicSummarySchema)
    @tips_blp.response(200, s.TipSchema)
    @tips_blp.alt_response(409, response="CONFLICT")
    def put(self, body, tip_id):
        """Approve the public summary of a tip: the only text of it Open311 publishes.

        Write it in your own words (what and roughly where, never who): the tipster's
        description and address are never published. `null` withdraws it. Tips of
        confidential categories and merged tips are never published (409).
        """
        actor = current_user()
        tip = service.get_for_staff(db.session, actor, tip_id, lock=True)
        preconditions.require("tip", tip)
        tip = service.set_public_summary(db.session, actor, tip, body["summary"])
        preconditions.tag("tip", tip)
        return _staff_item(tip, "wgs84")


@tips_blp.route("/<uuid:tip_id>/transitions")
class Transitions(MethodView):
    @tips_blp.role_required(GRID_STAFF)
    @versioned(tips_blp, edit=True, read_by="GET /tips/{tip_id}")
    @tips_blp.arguments(s.TransitionSchema)
    @tips_blp.response(200, s.TipSchema)
    @tips_blp.alt_response(409, response="CONFLICT")
    def post(self, body, tip_id):
        """Move a tip along its workflow, with an optional note (`public`: its reporter sees it).

        submitted → triaged | rejected | referred_to_police; triaged → assigned | in_progress |
        resolved | rejected | referred_to_police; assigned → triaged | in_progress | resolved |
        rejected | referred_to_police; in_progress → assigned | resolved | rejected |
        referred_to_police; resolved, rejected → triaged (reopen). Anything else is a 409.
        `assigned` needs `assignee_id`: staff whose jurisdiction covers the tip. Named
        reporters are notified.
        """
        actor = current_user()
        tip = service.get_for_staff(db.session, actor, tip_id, lock=True)
        preconditions.require("tip", tip)
        tip = service.transition(
            db.session,
            actor,
            tip,
            body["to"],
            note=body["note"],
            public=body["public"],
            assignee_id=body["assignee_id"],
        )
        preconditions.tag("tip", tip)
        return _staff_item(tip, "wgs84")


@tips_blp.route("/<uuid:tip_id>/notes")
class Notes(MethodView):
    @tips_blp.role_required(GRID_STAFF)
    @tips_blp.arguments(s.NoteSchema)
    @tips_blp.response(201, s.EventSchema)
    def post(self, body, tip_id):
        """Add a note to a tip's history (`public`: its reporter sees it)."""
        actor = current_user()
        tip = service.get_for_staff(db.session, actor, tip_id)
        return service.add_note(db.session, actor, tip, body["note"], body["public"])


@tips_blp.route("/<uuid:tip_id>/merge")
class Merge(MethodView):
    @tips_blp.role_required(GRID_STAFF)
    @versioned(tips_blp, edit=True, read_by="GET /tips/{tip_id}")
    @tips_blp.arguments(s.MergeSchema)
    @tips_blp.response(200, s.TipSchema)
    @tips_blp.alt_response(409, response="CONFLICT")
    def post(self, body, tip_id):
        """Merge this tip (a duplicate) into another one of your jurisdiction (`into`).

        The duplicate becomes `merged`; its reporter and follow code keep working and follow
        the other tip's workflow. If-Match is this tip's ETag.
        """
        actor = current_user()
        tip = service.get_for_staff(db.session, actor, tip_id, lock=True)
        preconditions.require("tip", tip)
        tip = service.merge(db.session, actor, tip, body["into"])
        preconditions.tag("tip", tip)
        return _staff_item(tip, "wgs84")


@tips_blp.route("/<uuid:tip_id>/reporter")
class Reporter(MethodView):
    @tips_blp.role_required(GRID_STAFF)
    @tips_blp.arguments(s.PurposeArgsSchema, location="query")
    @tips_blp.response(200, s.ReporterSchema)
    def get(self, args, tip_id):
        """Who sent a named tip (404 for anonymous tips: there is nobody to show, and for tips
        closed longer than TIP_REPORTER_CONTACT_DAYS_AFTER_CLOSE: no longer disclosed).

        Say why (`purpose`): every read goes on the audit trail with it.
        """
        actor = current_user()
        tip = service.get_for_staff(db.session, actor, tip_id)
        reporter = db.session.get(User, tip.reporter_id) if tip.reporter_id else None
        if reporter is None:
            raise NotFound(_("This tip has no named reporter."))
        if tip.reporter_contact_expired_at is not None:
            raise NotFound(_("This tip closed long ago; who sent it is no longer kept for staff."))
        audit.record(
            db.session,
            "tip.reporter_viewed",
            actor=actor,
            object_type="tip",
            object_ids=[tip.id],
            purpose=args["purpose"],
        )
        return {
            "id": reporter.id,
            "real_name": reporter.real_name,
            "phone": reporter.phone,
            "police_contact_consent": tip.police_contact_consent,
        }


# -- categories ----------------------------------------------------------------------------------


@categories_blp.route("")
class Categories(MethodView):
    @categories_blp.public
    @public_data
    @categories_blp.arguments(s.CategoryArgsSchema, location="query")
    @categories_blp.response(200, s.CategoryListSchema)
    def get(self, args):
        """Tip categories, in display order (retired ones only for admins who ask)."""
        include = args["include_inactive"] and current_identity() and ADMIN in current_roles()
        return {"items": service.categories(db.session, include_inactive=bool(include))}

    @categories_blp.role_required(ADMIN)
    @categories_blp.arguments(s.CategoryCreateSchema)
    @categories_blp.response(201, s.CategorySchema)
    def post(self, body):
        """Add a category."""
        return service.create_category(db.session, body)


@categories_blp.route("/<string:code>")
class CategoryByCode(MethodView):
    @categories_blp.role_required(ADMIN)
    @categories_blp.arguments(s.CategoryUpdateSchema)
    @categories_blp.response(200, s.CategorySchema)
    def patch(self, body, code):
        """Change a category (`active: false` retires it: no new tips, old ones keep it)."""
        return service.update_category(db.session, code, body)


# -- my tips -------------------------------------------------------------------------------------


def _own_views(tips: list[Tip]) -> list[dict[str, Any]]:
    """Reporter views of a page of tips with a fixed number of queries: photos and history are
    loaded for the whole page (merged tips, rare, follow their target one by one)."""
    session = db.session
    ids = [tip.id for tip in tips]
    media: dict[Any, list] = {tip_id: [] for tip_id in ids}
    for item in service.media_of(session, ids):
        media[item.tip_id].append(item)
    plain = [tip.id for tip in tips if tip.merged_into_id is None]
    history: dict[Any, list] = {tip_id: [] for tip_id in plain}
    for event in service.public_events(session, plain):
        history[event.tip_id].append(event)
    return [_own_view(tip, media[tip.id], history.get(tip.id)) for tip in tips]


def _own_view(tip: Tip, media=None, history=None) -> dict[str, Any]:
    """A reporter's view of their tip (`media` and `history` when already loaded)."""
    merged = tip.merged_into_id is not None
    return {
        **{name: getattr(tip, name) for name in ("id", "description", "address_text")},
        "category_code": tip.category_code,
        "location": _location(tip),
        "occurred_at": tip.occurred_at,
        "status": service.effective(db.session, tip).status if merged else tip.status,
        "police_contact_consent": tip.police_contact_consent,
        "created_at": tip.created_at,
        "status_changed_at": tip.status_changed_at,
        "media": _media_refs(service.media_of(db.session, [tip.id]) if media is None else media),
        "history": service.public_history(db.session, tip) if history is None else history,
    }


@my_tips_blp.route("")
class MyTips(MethodView):
    @my_tips_blp.login_required
    @my_tips_blp.arguments(PageArgsSchema, location="query")
    @my_tips_blp.response(200, page_of(s.OwnTipSchema))
    def get(self, page):
        """Your named tips, newest first (anonymous ones are not linked to you, by design)."""
        result = paginate(db.session, service.own_query(current_user()), **page)
        return {**result, "items": _own_views(result["items"])}


@my_tips_blp.route("/<uuid:tip_id>")
class MyTip(MethodView):
    @my_tips_blp.login_required
    @my_tips_blp.response(200, s.OwnTipSchema)
    def get(self, tip_id):
        """One of your tips, with its status and the notes staff made public."""
        return _own_view(service.get_own(db.session, current_user(), tip_id))


@my_tips_blp.route("/<uuid:tip_id>/information")
class MyTipInformation(MethodView):
    @my_tips_blp.login_required
    @my_tips_blp.idempotent
    @my_tips_blp.arguments(s.InfoSchema)
    @my_tips_blp.response(201, s.OwnTipSchema)
    def post(self, body, tip_id):
        """Add to your tip while it is open: more text, more photos."""
        user = current_user()
        tip = service.get_own(db.session, user, tip_id)
        service.add_information(db.session, tip, body["note"], body["media_ids"], user)
        return _own_view(tip)
