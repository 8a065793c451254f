"""Areas: resolve points to area paths, import outlines, derive approximate polygons, cut grids.

Spatial work happens in PostGIS, where the indexes are; Python only converts coordinate systems
and validates input at the edges.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import shapely
from geoalchemy2.elements import WKBElement
from geoalchemy2.shape import from_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION, INTEGER
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from app.areas.models import Area, AreaLevel
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.i18n import _
from geo.crs import CoordSystem, geometry_to_wgs84
from geo.distance import haversine_m
from geo.geojson import GeoJSONError, to_shape


@dataclass(frozen=True)
class AreaPath:
    """Where a point lies: the ids of its district, subdistrict, community and grid cell."""

    district_id: uuid.UUID | None = None
    subdistrict_id: uuid.UUID | None = None
    community_id: uuid.UUID | None = None
    grid_cell_id: uuid.UUID | None = None

    def as_dict(self) -> dict[str, uuid.UUID | None]:
        return {
            "district_id": self.district_id,
            "subdistrict_id": self.subdistrict_id,
            "community_id": self.community_id,
            "grid_cell_id": self.grid_cell_id,
        }


def deepest_area_sql(point: str) -> str:
    """SQL for the id of the deepest area containing `point` (an SQL geometry expression in
    SRID 4326), or NULL: the one rule every point lookup uses, set-based ones included."""
    return f"""(
        SELECT pc.area_id
        FROM area_pieces pc JOIN areas ar ON ar.id = pc.area_id
        WHERE ST_Intersects(pc.geom, {point})
        ORDER BY pc.depth DESC, ar.code
        LIMIT 1
    )"""  # noqa: S608 - `point` is SQL of ours, never input


# For each point, the deepest area whose pieces contain it (ties on a shared edge go to the lower
# code, so the answer is stable). One row comes back: the hit area of every point, in order, and
# the path of each distinct hit area, so that Python builds a few hundred paths, not one per point.
RESOLVE_SQL = text(
    f"""
    WITH hit AS MATERIALIZED (
        SELECT p.ord, {deepest_area_sql("ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)")} AS area_id
        FROM unnest(:lons, :lats) WITH ORDINALITY AS p(lon, lat, ord)
    )
    SELECT
        (SELECT array_agg(area_id::text ORDER BY ord) FROM hit) AS hits,
        (SELECT json_object_agg(a.id, json_build_array(
                    a.district_id, a.subdistrict_id, a.community_id,
                    CASE WHEN a.level = 'grid_cell' THEN a.id END))
         FROM areas a WHERE a.id IN (SELECT area_id FROM hit)) AS paths
    """  # noqa: S608 - formatted with SQL of ours, never input
).bindparams(
    bindparam("lons", type_=ARRAY(DOUBLE_PRECISION)),
    bindparam("lats", type_=ARRAY(DOUBLE_PRECISION)),
)

_OUTSIDE = AreaPath()


def _path(ids: list[str | None]) -> AreaPath:
    return AreaPath(*(uuid.UUID(i) if i else None for i in ids))


def resolve_paths(session: Session, points: Sequence[tuple[float, float]]) -> list[AreaPath]:
    """Area paths of many WGS-84 (lon, lat) points in one query, in the order given."""
    if not points:
        return []
    hits, paths = session.execute(
        RESOLVE_SQL, {"lons": [p[0] for p in points], "lats": [p[1] for p in points]}
    ).one()
    by_area = {area_id: _path(ids) for area_id, ids in (paths or {}).items()}
    return [by_area[h] if h else _OUTSIDE for h in hits]


def resolve_path(session: Session, lon: float, lat: float) -> AreaPath:
    return resolve_paths(session, [(lon, lat)])[0]


def get_area(session: Session, area_id: uuid.UUID) -> Area:
    area = session.get(Area, area_id)
    if area is None:
        raise NotFound(_("No such area."))
    return area


def get_by_code(session: Session, code: str) -> Area:
    area = session.scalar(select(Area).where(Area.code == code))
    if area is None:
        raise NotFound(_("No area has the code %(code)s.", code=code))
    return area


# --- writing areas ------------------------------------------------------------------------------


def _set_path(area: Area, parent: Area | None) -> None:
    """Fill the area's own path from its parent's (the area's id must be set)."""
    level = AreaLevel(area.level)
    if level.parent_level is None:
        if parent is not None:
            raise Unprocessable(_("A district has no parent area."))
    elif parent is None or parent.level != level.parent_level:
        raise Unprocessable(
            _(
                "The parent of a %(level)s must be a %(parent_level)s.",
                level=level,
                parent_level=level.parent_level,
            )
        )
    area.parent_id = parent.id if parent else None
    area.district_id = area.id if level is AreaLevel.DISTRICT else parent.district_id
    area.subdistrict_id = (
        area.id if level is AreaLevel.SUBDISTRICT else (parent.subdistrict_id if parent else None)
    )
    area.community_id = (
        area.id if level is AreaLevel.COMMUNITY else (parent.community_id if parent else None)
    )


def _existing_or_new(session: Session, code: str, level: AreaLevel, parent: Area | None) -> Area:
    """The area with this code, or a new one. An existing area keeps its level and its parent:
    moving it would leave the paths stored on its descendants (and on every row located in
    it) pointing at the old parent."""
    area = session.scalar(select(Area).where(Area.code == code))
    if area is None:
        area = Area(id=uuid.uuid4(), code=code, level=level)
        session.add(area)
        return area
    if area.level != level:
        raise Unprocessable(
            _(
                "%(code)s exists as a %(level)s, not a %(level2)s.",
                code=code,
                level=area.level,
                level2=level,
            )
        )
    if area.parent_id != (parent.id if parent else None):
        raise Unprocessable(
            _("%(code)s exists under another parent; areas are not moved.", code=code)
        )
    return area


# Repair in PostGIS: ST_MakeValid, keep the polygonal part, always a MultiPolygon.
_REPAIRED = "ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_GeomFromWKB(:wkb, 4326)), 3))"


def upsert_area(
    session: Session,
    *,
    code: str,
    name: str,
    level: AreaLevel,
    parent: Area | None,
    geometry: BaseGeometry,
    urban_rural: str | None = None,
    approximate: bool = False,
    centre_estimated: bool = False,
    centre: BaseGeometry | None = None,
    source: str | None = None,
) -> Area:
    """Create the area with this code, or update it (imports are idempotent by code).

    `geometry` is WGS-84 (Polygon or MultiPolygon); it is repaired with ST_MakeValid and refused
    if nothing polygonal is left.
    """
    repaired = session.execute(
        text(f"SELECT ST_AsEWKB({_REPAIRED}) AS g, ST_IsEmpty({_REPAIRED}) AS empty"),
        {"wkb": shapely.to_wkb(geometry)},
    ).one()
    if repaired.empty:
        raise Unprocessable(_("The geometry of %(code)s has no valid polygonal part.", code=code))
    area = _existing_or_new(session, code, level, parent)
    area.name = name
    area.level = level
    area.urban_rural = urban_rural if level is AreaLevel.COMMUNITY else None
    area.approximate = approximate
    area.centre_estimated = centre_estimated
    area.geom = _ewkb_element(repaired.g)
    area.centre = from_shape(centre, srid=4326) if centre is not None else None
    area.source = source
    _set_path(area, parent)
    session.flush()
    return area


def _ewkb_element(ewkb: bytes) -> WKBElement:
    return WKBElement(bytes(ewkb), srid=4326, extended=True)


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (feature index, message)


def features_of(document: dict) -> list[dict]:
    """The features of a FeatureCollection, a lone Feature, or a bare geometry."""
    if not isinstance(document, dict):
        raise GeoJSONError("the file is not a GeoJSON object")
    if document.get("type") == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise GeoJSONError("the FeatureCollection has no features list")
        return features
    if document.get("type") == "Feature":
        return [document]
    return [{"type": "Feature", "geometry": document, "properties": {}}]


def import_features(
    session: Session,
    features: Sequence[dict],
    *,
    level: AreaLevel,
    parent: Area | None,
    source_crs: CoordSystem = CoordSystem.WGS84,
    default_code: str | None = None,
    default_name: str | None = None,
    source: str | None = None,
    on_progress: Callable[[int], None] = lambda _n: None,
) -> ImportReport:
    """Import polygons; each feature's `code` and `name` properties identify it (or the
    defaults, for a file holding one bare geometry). A bad feature is reported with its index
    and skipped; the others are imported. Each feature runs in a savepoint."""
    report = ImportReport()
    for index, feature in enumerate(features):
        try:
            if not isinstance(feature, dict):
                raise Unprocessable(_("a feature must be a JSON object"))
            props = feature.get("properties") or {}
            if not isinstance(props, dict):
                raise Unprocessable(_("a feature's properties must be a JSON object"))
            code = str(props.get("code") or default_code or "").strip()
            name = str(props.get("name") or default_name or "").strip()
            if not code or not name:
                raise Unprocessable(_("every feature needs a code and a name"))
            if len(code) > 32 or len(name) > 200:
                raise Unprocessable(_("a code has at most 32 characters, a name at most 200"))
            shape = to_shape(feature, allowed={"Polygon", "MultiPolygon"})
            shape = geometry_to_wgs84(shape, source_crs)
            urban_rural = props.get("urban_rural")
            if urban_rural not in (None, "urban", "rural"):
                raise Unprocessable(_("urban_rural must be urban or rural"))
            with session.begin_nested():
                upsert_area(
                    session,
                    code=code,
                    name=name,
                    level=level,
                    parent=parent,
                    geometry=shape,
                    urban_rural=urban_rural,
                    source=source,
                )
            report.imported.append(code)
        except (GeoJSONError, Unprocessable) as exc:
            report.errors.append((index, getattr(exc, "detail", None) or str(exc)))
        except DBAPIError as exc:  # the feature's savepoint is rolled back; the others go on
            report.errors.append((index, f"refused by the database ({type(exc.orig).__name__})"))
        on_progress(1)
    return report


# --- approximate polygons from centre points ----------------------------------------------------


@dataclass(frozen=True)
class ChildSeed:
    """A child area to derive: its code, name and centre (WGS-84), if known."""

    code: str
    name: str
    lon: float | None = None
    lat: float | None = None
    urban_rural: str | None = None
    estimated: bool = False  # the centre is itself an estimate (e.g. a mean of other points)


# Voronoi cells of the seeds, clipped to the parent's outline. Seeds without a known centre get
# one generated inside the parent's largest part (deterministically, from the seed number), and
# those outside the parent are moved to the nearest point of its outline; both are flagged.
DERIVE_SQL = text(
    """
    WITH parent AS (
        SELECT geom, (SELECT d.geom FROM ST_Dump(geom) AS d
                      ORDER BY ST_Area(d.geom) DESC LIMIT 1) AS largest
        FROM areas WHERE id = :parent_id
    ),
    given AS (
        SELECT s.ord, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326) AS point
        FROM unnest(:lons, :lats) WITH ORDINALITY AS s(lon, lat, ord)
    ),
    placed AS (
        SELECT g.ord,
               CASE
                 WHEN g.point IS NULL THEN NULL
                 WHEN ST_Intersects(p.geom, g.point) THEN g.point
                 ELSE ST_ClosestPoint(p.geom, g.point)
               END AS geom,
               g.point IS NULL OR NOT ST_Intersects(p.geom, g.point) AS estimated
        FROM given g, parent p
    ),
    ranked AS (  -- points moved onto the outline can land on the same spot
        SELECT *, row_number() OVER (PARTITION BY ST_AsBinary(geom) ORDER BY ord) AS nth
        FROM placed
    ),
    seeds AS (
        SELECT r.ord,
               CASE WHEN r.geom IS NULL OR r.nth > 1
                    THEN ST_GeometryN(ST_GeneratePoints(p.largest, 1, :random_seed + r.ord::int), 1)
                    ELSE r.geom END AS geom,
               r.estimated OR r.nth > 1 AS estimated
        FROM ranked r, parent p
    ),
    cells AS (
        SELECT (ST_Dump(ST_VoronoiPolygons(ST_Collect(geom), 0,
                 ST_Expand((SELECT geom FROM parent), 0.1)))).geom AS cell
        FROM seeds
    )
    SELECT s.ord, s.estimated, ST_AsEWKB(s.geom) AS centre,
           ST_AsEWKB(ST_Multi(ST_CollectionExtract(ST_MakeValid(
               CASE WHEN (SELECT count(*) FROM seeds) = 1 THEN p.geom
                    ELSE ST_Intersection(c.cell, p.geom) END), 3))) AS geom
    FROM seeds s
    CROSS JOIN parent p
    LEFT JOIN cells c ON ST_Intersects(c.cell, s.geom)
    ORDER BY s.ord
    """
).bindparams(
    bindparam("lons", type_=ARRAY(DOUBLE_PRECISION)),
    bindparam("lats", type_=ARRAY(DOUBLE_PRECISION)),
)

# Two seeds at the same spot would share one Voronoi cell: later ones move this far east.
_DUPLICATE_SHIFT_DEG = 0.0003  # about 25 m in Beijing


def _separate_duplicates(seeds: Sequence[ChildSeed]) -> list[ChildSeed]:
    seen: set[tuple[float, float]] = set()
    separated = []
    for seed in seeds:
        if seed.lon is not None and seed.lat is not None:
            lon = seed.lon
            while (lon, seed.lat) in seen:
                lon += _DUPLICATE_SHIFT_DEG
            if lon != seed.lon:
                seed = replace(seed, lon=lon, estimated=True)
            seen.add((seed.lon, seed.lat))
        separated.append(seed)
    return separated


def derive_children(
    session: Session,
    parent: Area,
    level: AreaLevel,
    seeds: Sequence[ChildSeed],
    *,
    source: str,
    random_seed: int = 110105,
) -> list[Area]:
    """Approximate polygons for the children of `parent` from their centre points: Voronoi
    cells clipped to the parent's outline, marked `approximate` (and `centre_estimated` where
    the centre had to be generated or moved inside the parent)."""
    if level.parent_level != parent.level:
        raise Unprocessable(
            _(
                "A %(level)s cannot be derived inside a %(level2)s.",
                level=level,
                level2=parent.level,
            )
        )
    if not seeds:
        return []
    seeds = _separate_duplicates(seeds)
    rows = session.execute(
        DERIVE_SQL,
        {
            "parent_id": parent.id,
            "lons": [s.lon for s in seeds],
            "lats": [s.lat for s in seeds],
            "random_seed": random_seed,
        },
    ).all()
    # A seed on a cell edge touches two cells: keep the first match per seed.
    by_ord: dict[int, object] = {}
    for row in rows:
        by_ord.setdefault(row.ord, row)
    areas = []
    for ord_, seed in enumerate(seeds, start=1):
        row = by_ord.get(ord_)
        if row is None or row.geom is None:
            continue
        area = _existing_or_new(session, seed.code, level, parent)
        area.name = seed.name
        area.level = level
        area.urban_rural = seed.urban_rural if level is AreaLevel.COMMUNITY else None
        area.approximate = True
        area.centre_estimated = bool(row.estimated) or seed.estimated
        area.geom = _ewkb_element(row.geom)
        area.centre = _ewkb_element(row.centre)
        area.source = source
        _set_path(area, parent)
        areas.append(area)
    session.flush()
    return areas


# Voronoi cells of the community points of a whole district, clipped to its outline, united by
# sub-district: each sub-district's outline is the union of its communities' cells, so that every
# known community point lies inside its own sub-district (a sub-district's own centre point, often
# unknown or at its office, plays no part unless none of its communities has one).
SUBDISTRICTS_SQL = text(
    """
    WITH district AS (SELECT geom FROM areas WHERE id = :district_id),
    seeds AS (
        SELECT s.grp, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326) AS point
        FROM unnest(:groups, :lons, :lats) AS s(grp, lon, lat)
    ),
    cells AS (
        SELECT (ST_Dump(ST_VoronoiPolygons(ST_Collect(point), 0,
                 ST_Expand((SELECT geom FROM district), 0.1)))).geom AS cell
        FROM seeds
    ),
    owned AS (  -- a seed lies inside its own cell, never on its edge
        SELECT DISTINCT ON (c.cell) s.grp, c.cell
        FROM cells c JOIN seeds s ON ST_Contains(c.cell, s.point)
        ORDER BY c.cell, s.grp
    ),
    united AS (
        SELECT o.grp, ST_Multi(ST_CollectionExtract(ST_MakeValid(
                   ST_Intersection(ST_UnaryUnion(ST_Collect(o.cell)), d.geom)), 3)) AS geom
        FROM owned o, district d
        GROUP BY o.grp, d.geom
    )
    SELECT u.grp, ST_AsEWKB(u.geom) AS geom,
           ST_AsEWKB(CASE WHEN ST_Intersects(u.geom, g.point) THEN g.point
                          ELSE ST_PointOnSurface(u.geom) END) AS centre,
           g.point IS NULL OR NOT ST_Intersects(u.geom, g.point) AS centre_estimated
    FROM united u
    LEFT JOIN (SELECT c.grp, ST_SetSRID(ST_MakePoint(c.lon, c.lat), 4326) AS point
               FROM unnest(:centre_groups, :centre_lons, :centre_lats) AS c(grp, lon, lat)) g
           ON g.grp = u.grp
    ORDER BY u.grp
    """
).bindparams(
    bindparam("groups", type_=ARRAY(INTEGER)),
    bindparam("lons", type_=ARRAY(DOUBLE_PRECISION)),
    bindparam("lats", type_=ARRAY(DOUBLE_PRECISION)),
    bindparam("centre_groups", type_=ARRAY(INTEGER)),
    bindparam("centre_lons", type_=ARRAY(DOUBLE_PRECISION)),
    bindparam("centre_lats", type_=ARRAY(DOUBLE_PRECISION)),
)


def derive_from_community_points(
    session: Session,
    district: Area,
    subdistricts: Sequence[tuple[ChildSeed, Sequence[ChildSeed]]],
    *,
    source: str,
) -> list[Area]:
    """Approximate sub-districts and communities of `district` from the communities' centre
    points, bottom up: the Voronoi cells of all known community points of the district make the
    sub-districts (each the union of its communities' cells), then each sub-district is divided
    among its communities (those without a point get a generated one inside it). Every known
    community point thus lies in its own community and sub-district. A sub-district none of whose
    communities has a point is the cell of its own centre point; one without either is skipped.

    `subdistricts` pairs each sub-district's seed with its communities' seeds. Returns the
    sub-districts derived."""
    if district.level != AreaLevel.DISTRICT:
        raise Unprocessable(_("Sub-districts are derived inside a district."))
    separated = _separate_duplicates([c for _sub, children in subdistricts for c in children])
    groups, lons, lats, centres = [], [], [], []
    grouped: list[tuple[ChildSeed, list[ChildSeed]]] = []
    for number, (sub, children) in enumerate(subdistricts):
        mine, separated = separated[: len(children)], separated[len(children) :]
        grouped.append((sub, mine))
        known = [c for c in mine if c.lon is not None and c.lat is not None]
        if not known and sub.lon is not None and sub.lat is not None:
            known = [sub]
        groups += [number] * len(known)
        lons += [c.lon for c in known]
        lats += [c.lat for c in known]
        if sub.lon is not None and sub.lat is not None:
            centres.append((number, sub.lon, sub.lat))
    if not groups:
        return []
    rows = session.execute(
        SUBDISTRICTS_SQL,
        {
            "district_id": district.id,
            "groups": groups,
            "lons": lons,
            "lats": lats,
            "centre_groups": [c[0] for c in centres],
            "centre_lons": [c[1] for c in centres],
            "centre_lats": [c[2] for c in centres],
        },
    ).all()
    derived = []
    for row in rows:
        sub, children = grouped[row.grp]
        if row.geom is None:
            continue
        area = _existing_or_new(session, sub.code, AreaLevel.SUBDISTRICT, district)
        area.name = sub.name
        area.level = AreaLevel.SUBDISTRICT
        area.urban_rural = None
        area.approximate = True
        area.centre_estimated = bool(row.centre_estimated) or sub.estimated
        area.geom = _ewkb_element(row.geom)
        area.centre = _ewkb_element(row.centre)
        area.source = source
        _set_path(area, district)
        session.flush()
        children = _place_unknown(session, area, children, random_seed=110105 + row.grp)
        derive_children(session, area, AreaLevel.COMMUNITY, children, source=source)
        derived.append(area)
    return derived


_CANDIDATES = 200
CANDIDATES_SQL = text(
    "SELECT ST_X(d.geom) AS lon, ST_Y(d.geom) AS lat"
    " FROM areas, ST_Dump(ST_GeneratePoints(geom, :n, :seed)) AS d WHERE id = :area_id"
)


def _place_unknown(
    session: Session, parent: Area, seeds: Sequence[ChildSeed], *, random_seed: int
) -> list[ChildSeed]:
    """Centres for the seeds without one: one by one, the random point of `parent` farthest
    from every centre so far (deterministic by `random_seed`), so that the communities nobody
    located take the room left between the known ones rather than a random bite of one."""
    if all(s.lon is not None for s in seeds):
        return list(seeds)
    candidates = [
        (row.lon, row.lat)
        for row in session.execute(
            CANDIDATES_SQL, {"n": _CANDIDATES, "seed": random_seed, "area_id": parent.id}
        )
    ]
    taken = [(s.lon, s.lat) for s in seeds if s.lon is not None and s.lat is not None]
    placed = []
    for seed in seeds:
        if seed.lon is None or seed.lat is None:
            if not candidates:
                placed.append(seed)
                continue
            lon, lat = max(
                candidates,
                key=lambda c: min((haversine_m(*c, *t) for t in taken), default=0.0),
            )
            candidates.remove((lon, lat))
            taken.append((lon, lat))
            seed = replace(seed, lon=lon, lat=lat, estimated=True)
        placed.append(seed)
    return placed


# --- grid cells ---------------------------------------------------------------------------------

# Squares of cell_size_m laid out in UTM 50N (metres; Beijing's zone), brought back to WGS-84 and
# clipped there to the community's own outline, so that the cells cover it exactly.
GRID_SQL = text(
    """
    WITH c AS (
        SELECT geom, ST_Transform(geom, 32650) AS metric FROM areas WHERE id = :community_id
    ),
    squares AS (
        SELECT sq.i, sq.j,
               ST_Multi(ST_CollectionExtract(ST_MakeValid(
                   ST_Intersection(ST_Transform(sq.geom, 4326), c.geom)), 3)) AS geom
        FROM c, ST_SquareGrid(:size, c.metric) AS sq
        WHERE ST_Intersects(sq.geom, c.metric)
    )
    SELECT i, j, ST_AsEWKB(geom) AS geom
    FROM squares
    WHERE NOT ST_IsEmpty(geom) AND ST_Area(geom::geography) >= 1
    ORDER BY j DESC, i
    """
)
GENERATED_GRID = "generated"


def cut_grid(session: Session, community: Area, cell_size_m: float, *, source: str) -> list[Area]:
    """Cut a community into square grid cells (where no official grid polygons exist).

    Cells are coded `<community code>-G<nnn>`, numbered from the north-west, row by row. Cutting
    again replaces the generated cells, unless any of them is in a staff member's jurisdiction
    (reassign first: a cell of the same code would be another place). A community with official
    (imported) cells is not cut.
    """
    if community.level != AreaLevel.COMMUNITY:
        raise Unprocessable(_("Only a community can be cut into grid cells."))
    if not 50 <= cell_size_m <= 2000:
        raise Unprocessable(_("The cell size must be between 50 and 2000 metres."))
    existing = list(
        session.scalars(
            select(Area).where(Area.parent_id == community.id, Area.level == AreaLevel.GRID_CELL)
        )
    )
    if any(not (cell.source or "").startswith(GENERATED_GRID) for cell in existing):
        raise Conflict(_("%(code)s has official grid cells; it is not cut.", code=community.code))
    try:
        with session.begin_nested():
            for cell in existing:
                session.delete(cell)
            session.flush()
    except IntegrityError as exc:  # a foreign key (a staff grant, say) still points at a cell
        raise Conflict(
            _(
                "The grid cells of %(code)s are in use (e.g. in a staff jurisdiction); "
                "reassign them before cutting again.",
                code=community.code,
            )
        ) from exc
    rows = session.execute(GRID_SQL, {"community_id": community.id, "size": cell_size_m}).all()
    cells = []
    for number, row in enumerate(rows, start=1):
        cell = Area(
            id=uuid.uuid4(),
            code=f"{community.code}-G{number:03d}",
            name=f"{community.name} 网格{number}",
            level=AreaLevel.GRID_CELL,
            approximate=True,
            geom=_ewkb_element(row.geom),
            source=f"{GENERATED_GRID}: {source}"
            if not source.startswith(GENERATED_GRID)
            else source,
        )
        _set_path(cell, community)
        session.add(cell)
        cells.append(cell)
    session.flush()
    return cells
