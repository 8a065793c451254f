"""Point → area path resolution, derivation of approximate polygons, grids."""

from __future__ import annotations

import random

import pytest
from geoalchemy2 import Geography
from shapely.geometry import Polygon
from sqlalchemy import func, select, text

from app.areas import service
from app.areas.models import Area, AreaLevel
from app.core.errors import Conflict, Unprocessable

CHAOYANG_BBOX = (116.34, 39.80, 116.65, 40.12)  # WGS-84, around the official outline


def centre_of(session, area: Area) -> tuple[float, float]:
    return tuple(
        session.execute(
            select(
                func.ST_X(func.ST_PointOnSurface(Area.geom)),
                func.ST_Y(func.ST_PointOnSurface(Area.geom)),
            ).where(Area.id == area.id)
        ).one()
    )


def test_a_point_in_a_grid_cell_resolves_to_its_whole_path(session, area):
    cell = area("110105001024-G001")
    path = service.resolve_path(session, *centre_of(session, cell))
    community = area("110105001024")
    assert path.grid_cell_id == cell.id
    assert path.community_id == community.id
    assert path.subdistrict_id == area("110105001000").id
    assert path.district_id == area("110105000000").id


def test_a_point_outside_every_area_resolves_to_nulls(session):
    assert service.resolve_path(session, 121.47, 31.23) == service.AreaPath()  # Shanghai


def test_a_point_outside_any_grid_has_no_grid_cell(session, area):
    community = area("110105002024")  # no grid cut in the demo
    path = service.resolve_path(session, *centre_of(session, community))
    assert path.community_id == community.id
    assert path.grid_cell_id is None


def test_a_batch_resolves_in_one_query_in_request_order(session, area, count_queries):
    rng = random.Random(7)
    points = [(rng.uniform(116.35, 116.64), rng.uniform(39.81, 40.10)) for _ in range(200)]
    points.insert(3, (121.47, 31.23))
    with count_queries() as statements:
        paths = service.resolve_paths(session, points)
    assert len(statements) == 1
    assert len(paths) == len(points)
    assert paths[3] == service.AreaPath()
    # each answer agrees with resolving that point alone
    for point in rng.sample(points, 10):
        assert paths[points.index(point)] == service.resolve_path(session, *point)


def test_the_demo_communities_tile_the_district_without_overlaps(session):
    overlaps = session.scalar(
        text(
            """SELECT count(*) FROM areas a JOIN areas b
               ON a.level = 'community' AND b.level = 'community' AND a.id < b.id
              AND ST_Area(ST_Intersection(a.geom, b.geom)::geography) > 1"""
        )
    )
    assert overlaps == 0
    district_km2, communities_km2 = session.execute(
        text(
            """SELECT sum(ST_Area(geom::geography)) FILTER (WHERE level = 'district') / 1e6,
                      sum(ST_Area(geom::geography)) FILTER (WHERE level = 'community') / 1e6
               FROM areas"""
        )
    ).one()
    assert communities_km2 == pytest.approx(district_km2, rel=0.005)


def test_the_chaoyang_outline_lands_inside_the_known_bbox(session, area):
    min_lon, min_lat, max_lon, max_lat = session.execute(
        select(
            func.ST_XMin(func.ST_Extent(Area.geom)),
            func.ST_YMin(func.ST_Extent(Area.geom)),
            func.ST_XMax(func.ST_Extent(Area.geom)),
            func.ST_YMax(func.ST_Extent(Area.geom)),
        ).where(Area.code == "110105000000")
    ).one()
    assert CHAOYANG_BBOX[0] < min_lon < max_lon < CHAOYANG_BBOX[2]
    assert CHAOYANG_BBOX[1] < min_lat < max_lat < CHAOYANG_BBOX[3]
    # converted from GCJ-02: the raw file's west edge (116.3509) moved about 600 m west
    assert min_lon == pytest.approx(116.3447, abs=0.0005)


def test_derived_children_are_marked_approximate_and_estimated_centres_flagged(session, area):
    parent = area("110105001024")
    cells = service.derive_children(
        session,
        parent,
        AreaLevel.GRID_CELL,
        [
            service.ChildSeed("T-1", "west", *centre_of(session, area("110105001024-G001"))),
            service.ChildSeed("T-2", "somewhere"),
            service.ChildSeed("T-3", "far away", 121.47, 31.23),
        ],
        source="test",
    )
    assert [c.code for c in cells] == ["T-1", "T-2", "T-3"]
    assert all(c.approximate for c in cells)
    assert [c.centre_estimated for c in cells] == [False, True, True]
    outside_m2 = session.scalar(
        select(
            func.sum(func.ST_Area(func.ST_Difference(Area.geom, parent.geom).cast(Geography)))
        ).where(Area.code.like("T-%"))
    )
    assert outside_m2 < 1


def test_a_level_must_sit_under_its_parent_level(session, area):
    with pytest.raises(Unprocessable):
        service.derive_children(
            session,
            area("110105000000"),
            AreaLevel.COMMUNITY,
            [service.ChildSeed("X", "x")],
            source="t",
        )


def test_invalid_polygons_are_repaired_on_import(session, area):
    bowtie = Polygon([(116.40, 39.90), (116.41, 39.91), (116.41, 39.90), (116.40, 39.91)])
    created = service.upsert_area(
        session,
        code="TEST-BOWTIE",
        name="bow tie",
        level=AreaLevel.COMMUNITY,
        parent=area("110105001000"),
        geometry=bowtie,
    )
    assert session.scalar(select(func.ST_IsValid(Area.geom)).where(Area.id == created.id))
    assert (
        session.scalar(select(func.ST_NumGeometries(Area.geom)).where(Area.id == created.id)) == 2
    )


def test_a_grid_covers_its_community_in_cells_of_the_given_size(session, area):
    community = area("110105001025")
    cells = service.cut_grid(session, community, 200, source="test")
    assert cells
    assert all(c.parent_id == community.id and c.community_id == community.id for c in cells)
    covered, whole, largest = session.execute(
        text(
            """SELECT (SELECT sum(ST_Area(geom::geography)) FROM areas WHERE parent_id = :c),
                      (SELECT ST_Area(geom::geography) FROM areas WHERE id = :c),
                      (SELECT max(ST_Area(geom::geography)) FROM areas WHERE parent_id = :c)"""
        ),
        {"c": community.id},
    ).one()
    assert covered == pytest.approx(whole, rel=0.01)
    assert largest <= 200 * 200 * 1.02
    assert len(cells) >= whole / (200 * 200)
    # cutting again with larger cells replaces the old ones
    fewer = service.cut_grid(session, community, 400, source="test")
    count = session.scalar(select(func.count()).where(Area.parent_id == community.id))
    assert count == len(fewer) < len(cells)


def test_cutting_again_is_refused_while_a_cell_is_in_a_jurisdiction(session, area, create_user):
    community = area("110105001026")
    create_user(roles=["grid_staff"], jurisdiction=["110105001026-G001"])
    with pytest.raises(Conflict, match="in use"):
        service.cut_grid(session, community, 300, source="test")
    assert area("110105001026-G001").source.startswith("generated")


def test_a_community_with_official_cells_is_not_cut(session, area):
    community = area("110105001027")
    official = Polygon([(116.47, 39.90), (116.471, 39.90), (116.471, 39.901), (116.47, 39.901)])
    service.upsert_area(
        session,
        code="OFFICIAL-1",
        name="official",
        level=AreaLevel.GRID_CELL,
        parent=community,
        geometry=official,
        source="district grid office",
    )
    with pytest.raises(Conflict, match="official"):
        service.cut_grid(session, community, 250, source="test")
    assert area("OFFICIAL-1").level == "grid_cell"


def test_grid_cells_cover_their_community_without_gaps(session, area):
    community = area("110105001025")
    service.cut_grid(session, community, 250, source="test")
    uncovered_m2 = session.scalar(
        text(
            """SELECT ST_Area(ST_Difference(c.geom, (SELECT ST_Union(geom) FROM areas
                                                   WHERE parent_id = c.id))::geography)
               FROM areas c WHERE c.id = :c"""
        ),
        {"c": community.id},
    )
    assert uncovered_m2 < 5


def test_an_area_is_not_moved_to_another_parent(session, area):
    nanlang = area("110105001024")
    outline = to_shape_of(session, nanlang)
    with pytest.raises(Unprocessable, match="another parent"):
        service.upsert_area(
            session,
            code=nanlang.code,
            name=nanlang.name,
            level=AreaLevel.COMMUNITY,
            parent=area("110105002000"),
            geometry=outline,
        )


def test_deriving_cannot_change_an_areas_level(session, area):
    with pytest.raises(Unprocessable, match="exists as a community"):
        service.derive_children(
            session,
            area("110105001024"),
            AreaLevel.GRID_CELL,
            [service.ChildSeed("110105001025", "not a cell")],
            source="test",
        )


def to_shape_of(session, an_area):
    from geoalchemy2.shape import to_shape

    return to_shape(session.scalar(select(Area.geom).where(Area.id == an_area.id)))
