"""The demo geography puts real places where they are: every community whose centre point the
divisions file knows resolves, at that point, to its own community and sub-district."""

from __future__ import annotations

import csv
from collections import defaultdict

import pytest
from sqlalchemy import func, select

from app.areas import service as areas_service
from app.areas.models import Area, AreaLevel
from app.demo import DATA
from geo.crs import gcj02_to_wgs84

NANLANGJIAYUAN_GCJ02 = (116.466033, 39.907389)  # 南郎家园社区 of 建外街道, as the file has it


def known_community_points() -> dict[tuple[float, float], list[tuple[str, str]]]:
    """WGS-84 point -> (community code, sub-district code) of every community that has one (two
    pairs of communities share a point in the file)."""
    points = defaultdict(list)
    with (DATA / "chaoyang-divisions-gcj02.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle):
            if row[3] == "village" and row[12]:
                points[gcj02_to_wgs84(float(row[12]), float(row[13]))].append((row[0], row[1]))
    return points


def test_every_known_community_point_resolves_to_its_own_community_and_subdistrict(session):
    codes_by_id = dict(session.execute(select(Area.id, Area.code)).all())
    points = known_community_points()
    assert len(points) > 290
    paths = areas_service.resolve_paths(session, list(points))
    wrong = []
    for (point, owners), path in zip(points.items(), paths, strict=True):
        resolved = (codes_by_id.get(path.community_id), codes_by_id.get(path.subdistrict_id))
        if resolved not in owners:
            wrong.append((point, owners, resolved))
    assert wrong == []


def test_communities_sharing_a_point_each_hold_their_own_centre(session):
    shared = [owners for owners in known_community_points().values() if len(owners) > 1]
    assert shared, "the file has two pairs of communities at one point"
    for owners in shared:
        for code, subdistrict_code in owners:
            community = areas_service.get_by_code(session, code)
            lon, lat = session.execute(
                select(func.ST_X(Area.centre), func.ST_Y(Area.centre)).where(
                    Area.id == community.id
                )
            ).one()
            path = areas_service.resolve_path(session, lon, lat)
            assert path.community_id == community.id
            assert areas_service.get_area(session, path.subdistrict_id).code == subdistrict_code


def test_nanlangjiayuan_lies_in_jianwai(session, area):
    path = areas_service.resolve_path(session, *gcj02_to_wgs84(*NANLANGJIAYUAN_GCJ02))
    assert path.community_id == area("110105001024").id
    assert path.subdistrict_id == area("110105001000").id


def test_subdistricts_tile_the_district_as_their_communities_tile_them(session):
    def total_km2(level: AreaLevel) -> float:
        return session.scalar(
            select(func.sum(func.ST_Area(func.Geography(Area.geom))) / 1e6).where(
                Area.level == level
            )
        )

    district = total_km2(AreaLevel.DISTRICT)
    assert total_km2(AreaLevel.SUBDISTRICT) == pytest.approx(district, rel=1e-4)
    assert total_km2(AreaLevel.COMMUNITY) == pytest.approx(district, rel=1e-4)
    assert session.scalar(select(func.count()).where(Area.level == AreaLevel.SUBDISTRICT)) == 43
