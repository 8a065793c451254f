"""The console's patrols page: who is on patrol now inside the staff member's areas (positions
only of volunteers who consented to share them), and checkpoint compliance with its missed
windows.

Read through app/patrols/service.py (`on_patrol_now`) and app/patrols/checkpoints.py
(`compliance_query`, the query of GET /api/v1/checkpoints/compliance, and
`missed_windows_query`) with the signed-in staff member as the actor. A volunteer on patrol who
did not give the location-sharing consent is counted, never named or placed. Every read that
shows a position is written to the audit trail, as the API's read of a patrol's track is, and
is in the volunteer's access log (GET /api/v1/me/access-log, `position`).
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, jsonify, render_template, request
from sqlalchemy import func, select
from werkzeug.exceptions import UnprocessableEntity

from app.console import bp
from app.console.access import signed_in_user, staff_required
from app.console.views import local_time
from app.core import audit
from app.core.audit import AuditEvent
from app.core.auth import GRID_STAFF
from app.core.i18n import _l
from app.core.pagination import paginate
from app.extensions import db
from app.patrols import checkpoints
from app.patrols import service as patrols_service
from geo.crs import from_wgs84

PERIODS = {
    "24h": (dt.timedelta(hours=24), _l("the last 24 hours")),
    "7d": (dt.timedelta(days=7), _l("the last 7 days")),
    "30d": (dt.timedelta(days=30), _l("the last 30 days")),
}
MOST_CHECKPOINTS = 100
POSITION_READ = "patrol.position_read"
AUDIT_EVERY = dt.timedelta(minutes=10)
MOST_MISSED = 50
KIND_LABELS = {
    "walk_along": _l("Walk-along patrol"),
    "team_patrol": _l("Team patrol"),
    "checkpoint_tour": _l("Checkpoint tour"),
}


def _audit_positions(actor, shown: list[dict], now: dt.datetime) -> None:
    """One audit event per volunteer whose live position the staff member saw, as a track's
    read is (`patrol.read`), so it is in the volunteer's access log; a page left open and
    refreshing writes one per AUDIT_EVERY, not one per refresh."""
    if not shown:
        return
    recent = set(
        db.session.scalars(
            select(func.unnest(AuditEvent.object_ids)).where(
                AuditEvent.actor_id == actor.id,
                AuditEvent.action == POSITION_READ,
                AuditEvent.at > now - AUDIT_EVERY,
            )
        )
    )
    for item in shown:
        if str(item["id"]) not in recent:
            audit.record(
                db.session,
                POSITION_READ,
                actor=actor,
                object_type="patrol",
                object_ids=[item["id"]],
                details={"volunteer_id": str(item["volunteer_id"]), "where": "console"},
            )


def _on_patrol(crs: str) -> tuple[list[dict], int]:
    """Patrols under way with their shared positions (in `crs`); the read is audited."""
    actor = signed_in_user()
    now = dt.datetime.now(dt.UTC)
    shared, others = patrols_service.on_patrol_now(
        db.session, actor, now, current_app.config["DUTY_POSITION_MINUTES"]
    )
    _audit_positions(actor, [item for item in shared if item["position"] is not None], now)
    items = []
    for item in shared:
        position = item["position"]
        lon, lat = from_wgs84(*position, crs) if position else (None, None)
        items.append(
            {
                "id": str(item["id"]),
                "name": item["name"],
                "kind": str(KIND_LABELS.get(item["kind"], item["kind"])),
                "started_at": local_time(item["started_at"]),
                "last_fix_at": local_time(item["last_fix_at"]) if position else "",
                "lon": lon,
                "lat": lat,
            }
        )
    return items, others


@bp.route("/patrols")
@staff_required(GRID_STAFF)
def patrols():
    """Who is on patrol now (consented positions only), and checkpoint compliance."""
    period = request.args.get("period", "7d")
    if period not in PERIODS:
        raise UnprocessableEntity()
    actor = signed_in_user()
    end = dt.datetime.now(dt.UTC)
    start = end - PERIODS[period][0]
    compliance = paginate(
        db.session,
        checkpoints.compliance_query(actor, {}, start, end),
        scalars=False,
        page=1,
        page_size=MOST_CHECKPOINTS,
    )
    missed = paginate(
        db.session,
        checkpoints.missed_windows_query(actor, start, end),
        scalars=False,
        page=1,
        page_size=MOST_MISSED,
    )
    on_patrol, others = _on_patrol("wgs84")
    config = current_app.config
    return render_template(
        "console/patrols.html",
        on_patrol=on_patrol,
        others=others,
        compliance=compliance,
        missed=missed,
        period=period,
        periods=[(key, label) for key, (_span, label) in PERIODS.items()],
        fresh_minutes=config["DUTY_POSITION_MINUTES"],
        poll_seconds=config["CONSOLE_POLL_SECONDS"],
        tile_url=config["MAP_TILE_URL"],
        tile_crs=config["MAP_TILE_CRS"],
    )


@bp.route("/patrols.json")
@staff_required(GRID_STAFF)
def patrols_json():
    """Who is on patrol now, for the page's map and its refresh, in the base map's `crs`."""
    crs = request.args.get("crs", "wgs84")
    if crs not in ("wgs84", "gcj02"):
        raise UnprocessableEntity()
    items, others = _on_patrol(crs)
    return jsonify(items=items, others=others)
