"""`flask areas ...` and `flask users create`: the operators' commands."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app.areas.models import Area
from app.auth.models import User, phone_lookup
from app.demo import DATA

CHAOYANG_GCJ02 = DATA / "chaoyang-boundary-gcj02.json"


@pytest.fixture
def cli(app, session):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args), catch_exceptions=False)


def extent(session, code):
    return session.execute(
        select(
            func.ST_XMin(func.ST_Extent(Area.geom)),
            func.ST_YMin(func.ST_Extent(Area.geom)),
            func.ST_XMax(func.ST_Extent(Area.geom)),
            func.ST_YMax(func.ST_Extent(Area.geom)),
        ).where(Area.code == code)
    ).one()


def test_importing_the_real_outline_converts_it_from_gcj02(cli, session):
    result = cli(
        "areas",
        "import",
        str(CHAOYANG_GCJ02),
        "--level",
        "district",
        "--source-crs",
        "gcj02",
        "--code",
        "TEST-CY",
        "--name",
        "朝阳区 (test)",
    )
    assert result.exit_code == 0, result.output
    assert "imported 1 area(s), 0 error(s)" in result.output
    min_lon, min_lat, max_lon, max_lat = extent(session, "TEST-CY")
    assert 116.34 < min_lon < max_lon < 116.65
    assert 39.80 < min_lat < max_lat < 40.12
    raw = json.loads(CHAOYANG_GCJ02.read_text())
    raw_min_lon = min(x for polygon in raw["coordinates"] for ring in polygon for x, _ in ring)
    assert raw_min_lon - min_lon == pytest.approx(0.0062, abs=0.001)  # ~500 m GCJ-02 shift


def test_import_reports_bad_features_keeps_good_ones_and_updates_by_code(
    cli, session, tmp_path, area
):
    square = [[[116.40, 39.90], [116.41, 39.90], [116.41, 39.91], [116.40, 39.91], [116.40, 39.90]]]
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": "T-A", "name": "A"},
                "geometry": {"type": "Polygon", "coordinates": square},
            },
            {
                "type": "Feature",
                "properties": {"code": "T-B", "name": "B"},
                "geometry": {"type": "Point", "coordinates": [116.4, 39.9]},
            },
            {
                "type": "Feature",
                "properties": {"name": "no code"},
                "geometry": {"type": "Polygon", "coordinates": square},
            },
            {
                "type": "Feature",
                "properties": ["not", "an", "object"],
                "geometry": {"type": "Polygon", "coordinates": square},
            },
            {
                "type": "Feature",
                "properties": {"code": "C" * 40, "name": "long code"},
                "geometry": {"type": "Polygon", "coordinates": square},
            },
        ],
    }
    path = tmp_path / "communities.geojson"
    path.write_text(json.dumps(collection))
    args = ("areas", "import", str(path), "--level", "community", "--parent", "110105001000")
    first = cli(*args)
    assert "imported 1 area(s), 4 error(s)" in first.output
    for index in (1, 2, 3, 4):
        assert f"feature {index}:" in first.output
    collection["features"][0]["properties"]["name"] = "A renamed"
    path.write_text(json.dumps(collection))
    cli(*args)
    renamed = session.scalars(select(Area).where(Area.code == "T-A")).all()
    assert [a.name for a in renamed] == ["A renamed"]
    assert renamed[0].subdistrict_id == area("110105001000").id


def test_import_refuses_an_unknown_parent(cli, tmp_path):
    path = tmp_path / "x.geojson"
    path.write_text(
        json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]})
    )
    result = cli(
        "areas",
        "import",
        str(path),
        "--level",
        "community",
        "--parent",
        "NOPE",
        "--code",
        "X",
        "--name",
        "x",
    )
    assert result.exit_code != 0
    assert "No area has the code NOPE" in result.output


def test_derive_and_grid_commands(cli, session, tmp_path, area):
    from tests.areas.test_service import centre_of

    lon, lat = centre_of(session, area("110105001024"))
    points = tmp_path / "points.csv"
    points.write_text(f"code,name,lon,lat\nT-W,west,{lon},{lat}\nT-E,east,,\n")
    derived = cli(
        "areas",
        "derive",
        "--parent",
        "110105001024",
        "--level",
        "grid_cell",
        "--points",
        str(points),
    )
    assert "derived 2 grid_cell area(s) in 110105001024; 1 with estimated centres" in derived.output
    grid = cli("areas", "grid", "--community", "110105001025", "--cell-size-m", "300")
    assert grid.exit_code == 0
    count = session.scalar(select(func.count()).where(Area.parent_id == area("110105001025").id))
    assert f"{count} grid cell(s) in 110105001025" in grid.output


def test_users_create_validates_like_the_api(cli, session):
    ok = cli(
        "users",
        "create",
        "--role",
        "grid_staff",
        "--phone",
        "13500000001",
        "--password",
        "Grid-Staff-Pass-2026",
        "--name",
        "赵强",
        "--area",
        "110105001024",
    )
    assert ok.exit_code == 0, ok.output
    user = session.scalar(select(User).where(User.phone_hmac == phone_lookup("13500000001")))
    assert user.roles == ["grid_staff"]
    assert [a.code for a in user.jurisdiction] == ["110105001024"]
    weak = cli(
        "users",
        "create",
        "--role",
        "admin",
        "--phone",
        "13500000002",
        "--password",
        "12345678",
        "--name",
        "x",
    )
    assert weak.exit_code != 0
    assert (
        session.scalar(select(User).where(User.phone_hmac == phone_lookup("13500000002"))) is None
    )


def test_demo_load_is_idempotent_and_refused_in_production(cli, app, session, monkeypatch):
    before = session.scalar(select(func.count()).select_from(Area))
    again = cli("demo", "load")
    assert "accounts: 0 created" in again.output
    assert "adcode by Vonng (CC BY 4.0)" in again.output
    assert session.scalar(select(func.count()).select_from(Area)) == before
    monkeypatch.setitem(app.config, "ENV", "production")
    refused = cli("demo", "load")
    assert refused.exit_code != 0
    assert "never loaded in production" in refused.output
