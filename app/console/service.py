"""What the console reads that the API services do not already give: the outlines of the
areas a staff member works in (the offline base map) and the areas they may filter by.
Tips are read only through app/tips/service.py (`staff_query`, `get_for_staff`, ...)."""

from __future__ import annotations

import json
from typing import Any

from shapely.geometry import shape
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.areas.models import Area
from app.auth import service as auth_service
from app.auth.jurisdiction import area_path_columns, jurisdiction_of
from app.auth.models import User
from app.core.auth import GRID_STAFF, has_any_role
from geo.crs import geometry_from_wgs84
from geo.geojson import to_geojson

# Outlines are drawn on a screen: simplified to this many metres (UTM 50N), so a district of
# hundreds of communities stays a few hundred kilobytes.
OUTLINE_SIMPLIFY_M = 5
LEVELS = ("district", "subdistrict", "community", "grid_cell")
# The assignee picker lists at most this many staff members.
MOST_ASSIGNABLE = 200


def _visible_areas(actor: User):
    """Areas inside the actor's jurisdiction, and the areas above them (their district and
    sub-district), so that a community's staff see where their community lies."""
    jurisdiction = jurisdiction_of(actor)
    if jurisdiction.everywhere:
        return Area.level.in_(LEVELS)
    above = set()
    for granted in actor.jurisdiction:
        above.update(i for i in (granted.district_id, granted.subdistrict_id) if i is not None)
    return or_(jurisdiction.clause(area_path_columns(Area)), Area.id.in_(sorted(above)))


def areas_for_filter(session: Session, actor: User) -> list[Area]:
    """The communities and grid cells a staff member may narrow the queue to."""
    query = (
        select(Area)
        .where(_visible_areas(actor), Area.level.in_(("subdistrict", "community", "grid_cell")))
        .order_by(Area.code)
    )
    return list(session.scalars(query))


def outlines(session: Session, actor: User, crs: str) -> dict[str, Any]:
    """The visible areas as a GeoJSON FeatureCollection in `crs`, coarse levels first (so the
    finer outlines are drawn over them)."""
    inside = jurisdiction_of(actor).clause(area_path_columns(Area))
    metric = func.ST_SimplifyPreserveTopology(
        func.ST_Transform(Area.geom, 32650), OUTLINE_SIMPLIFY_M
    )
    rows = session.execute(
        select(
            Area.id,
            Area.code,
            Area.name,
            Area.level,
            inside.label("inside"),
            func.ST_AsGeoJSON(func.ST_Transform(metric, 4326)).label("outline"),
        )
        .where(_visible_areas(actor))
        .order_by(Area.code)
    ).all()
    rows.sort(key=lambda row: LEVELS.index(row.level) if row.level in LEVELS else len(LEVELS))
    features = [
        {
            "type": "Feature",
            "id": str(row.id),
            "geometry": to_geojson(geometry_from_wgs84(shape(json.loads(row.outline)), crs)),
            # `inside`: the actor's own areas, where the map opens (not the whole district).
            "properties": {
                "code": row.code,
                "name": row.name,
                "level": row.level,
                "inside": bool(row.inside),
            },
        }
        for row in rows
        if row.outline
    ]
    return {"type": "FeatureCollection", "features": features}


def assignable_staff(session: Session, actor: User, tip) -> list[User]:
    """Active staff the actor may see whose jurisdiction covers the tip: whom the tip may be
    assigned to (the service checks the choice again, app/tips/service.py `_assignee`)."""
    query, _count = auth_service.list_visible_users(session, actor, {"status": "active"})
    users = session.scalars(query.limit(MOST_ASSIGNABLE))
    return [
        user
        for user in users
        if has_any_role(user.roles, [GRID_STAFF]) and jurisdiction_of(user).covers(tip.path_ids)
    ]
