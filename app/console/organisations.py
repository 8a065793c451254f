"""The console's organisations page: community social organisations per community against the
city's targets (at least 15 per urban community, 8 per rural one, 2 of them brand
organisations), as a table and a map, the communities furthest from the targets first.

The figures are the API's (app/teams/service.py `targets`, the query behind GET
/api/v1/teams/targets) with the signed-in staff member as the actor, so staff see their own
communities only; this page only orders them by the gap instead of by code.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy import Select

from app.console import bp
from app.console import service as console_service
from app.console.access import signed_in_user, staff_required
from app.console.grid import BadFilter
from app.core.auth import GRID_STAFF
from app.core.i18n import _
from app.core.pagination import paginate
from app.extensions import db
from app.teams import service as teams_service
from app.teams.schemas import TargetArgsSchema

PAGE_SIZE = 50
# The map colours every community at once, up to this many (Chaoyang has 703 urban ones).
MOST_ON_MAP = 2000


def _args() -> tuple[dict[str, Any], int]:
    data = {"area_id": request.args["area_id"]} if request.args.get("area_id", "").strip() else {}
    try:
        args = TargetArgsSchema().load(data)
    except ValidationError as exc:
        raise BadFilter(_("Area: choose one of your areas from the list.")) from exc
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        page = 0
    if not 1 <= page <= 100_000:
        raise BadFilter(_("Page: a page number from 1."))
    return args, page


def gaps_first(query: Select) -> Select:
    """The targets query, the communities furthest from the targets first: most
    organisations short, then most brand organisations short, then by code."""
    rows = query.selected_columns
    return query.order_by(None).order_by(
        rows.short_by.desc(), rows.brand_short_by.desc(), rows.code
    )


def _targets(area_id) -> tuple[Select, dict[str, Any]]:
    query, summary = teams_service.targets(db.session, signed_in_user(), area_id)
    return gaps_first(query), summary


@bp.route("/organisations")
@staff_required(GRID_STAFF)
def organisations():
    """Community organisations of the staff member's communities against the targets."""
    args, page = _args()
    query, summary = _targets(args.get("area_id"))
    result = paginate(db.session, query, scalars=False, page=page, page_size=PAGE_SIZE)
    pages = max(1, -(-result["total"] // PAGE_SIZE))
    return render_template(
        "console/organisations.html",
        result=result,
        summary=summary,
        pages=pages,
        area_id=str(args.get("area_id") or ""),
        area_options=[
            (str(area.id), area.name)
            for area in console_service.areas_for_filter(db.session, signed_in_user())
            if area.level in ("subdistrict", "community")
        ],
        targets_url=url_for("console.organisations_json", **request.args.to_dict()),
        tile_url=current_app.config["MAP_TILE_URL"],
        tile_crs=current_app.config["MAP_TILE_CRS"],
    )


@bp.route("/organisations.json")
@staff_required(GRID_STAFF)
def organisations_json():
    """Every community's figures for the map (joined by id to /console/areas.geojson)."""
    args, _page = _args()
    query, summary = _targets(args.get("area_id"))
    rows = db.session.execute(query.limit(MOST_ON_MAP)).mappings()
    items = [{**row, "community_id": str(row["community_id"])} for row in rows]
    return jsonify(items=items, summary=summary)
