"""Administrative areas (public: these are published boundaries) and point lookup."""

from __future__ import annotations

import json

from flask.views import MethodView
from shapely.geometry import shape
from sqlalchemy import func, select

from app.areas import service
from app.areas.models import Area
from app.areas.schemas import (
    AreaDetailArgsSchema,
    AreaDetailSchema,
    AreaPathSchema,
    AreaQueryArgsSchema,
    AreaSchema,
    LocateArgsSchema,
)
from app.core.blueprint import Blueprint
from app.core.caching import public_data
from app.core.pagination import PageArgsSchema, page_of, paginate
from app.extensions import db
from geo.crs import geometry_from_wgs84, to_wgs84
from geo.geojson import to_geojson

blp = Blueprint("areas", __name__, url_prefix="/api/v1/areas", description="Administrative areas")


@blp.route("")
class Areas(MethodView):
    @blp.public
    @public_data
    @blp.arguments(AreaQueryArgsSchema, location="query")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_of(AreaSchema))
    def get(self, filters, page):
        """Areas by level, parent, name or statistical code, ordered by code."""
        query = select(Area).order_by(Area.code)
        if "level" in filters:
            query = query.where(Area.level == filters["level"])
        if "code" in filters:
            query = query.where(Area.code == filters["code"])
        if "parent_id" in filters:
            query = query.where(Area.parent_id == filters["parent_id"])
        if "q" in filters:
            pattern = (
                "%"
                + filters["q"].replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
                + "%"
            )
            query = query.where(Area.name.ilike(pattern))
        return paginate(db.session, query, **page)


@blp.route("/locate")
class Locate(MethodView):
    @blp.public
    @public_data
    @blp.arguments(LocateArgsSchema, location="query")
    @blp.response(200, AreaPathSchema)
    def get(self, args):
        """The district, sub-district, community and grid cell of a point (null outside)."""
        lon, lat = to_wgs84(args["lon"], args["lat"], args["coord_system"])
        return service.resolve_path(db.session, lon, lat).as_dict()


@blp.route("/<uuid:area_id>")
class AreaById(MethodView):
    @blp.public
    @public_data
    @blp.arguments(AreaDetailArgsSchema, location="query")
    @blp.response(200, AreaDetailSchema)
    def get(self, args, area_id):
        """One area; with `geometry=true`, its outline as GeoJSON (optionally simplified)."""
        area = service.get_area(db.session, area_id)
        body = AreaSchema().dump(area)
        body["geometry"] = None
        if args["geometry"]:
            outline = Area.geom
            if args["simplify_m"] > 0:  # simplify in metres (UTM 50N), then back to WGS-84
                metric = func.ST_Transform(Area.geom, 32650)
                simplified = func.ST_SimplifyPreserveTopology(metric, args["simplify_m"])
                outline = func.ST_Multi(func.ST_Transform(simplified, 4326))
            geojson = db.session.scalar(
                select(func.ST_AsGeoJSON(outline)).where(Area.id == area.id)
            )
            geometry = geometry_from_wgs84(shape(json.loads(geojson)), args["crs"])
            body["geometry"] = to_geojson(geometry)
        return body
