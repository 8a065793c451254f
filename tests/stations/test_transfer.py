"""Station import (CSV, GeoJSON; dry run; per-row errors; idempotent) and export."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import func, select

from app.stations.models import Station
from geo.crs import wgs84_to_gcj02
from tests.stations.test_routes import HERE, east_of

JIANWAI = "110105001000"
HEADER = "external_ref,name,type,lon,lat,amenities,opening_hours,capacity\n"


@pytest.fixture
def staff(create_user, token_for):
    return token_for(create_user(roles=["grid_staff"], jurisdiction=[JIANWAI]))


def upload(client, headers, content: str, filename: str, **form):
    data = {"file": (io.BytesIO(content.encode()), filename), **form}
    return client.post(
        "/api/v1/stations/import", data=data, headers=headers, content_type="multipart/form-data"
    )


def csv_rows(*rows: str) -> str:
    return HEADER + "".join(row + "\n" for row in rows)


def count(session, ref_prefix="imp-") -> int:
    return session.scalar(select(func.count()).where(Station.external_ref.like(f"{ref_prefix}%")))


def test_a_csv_import_keeps_good_rows_and_reports_bad_ones_by_line(client, session, staff):
    lon, lat = HERE
    content = csv_rows(
        f"imp-1,驿站一,rider_station,{lon},{lat},charging;hot_water,24h,10",
        f"imp-2,驿站二,no_such_type,{lon},{lat},,24h,",
        f'imp-3,驿站三,volunteer_post,{lon},{lat},,"{{""mon"": [[""09:00"", ""17:00""]]}}",',
        f"imp-4,驿站四,rider_station,200,{lat},,24h,",
        f"imp-5,驿站五,rider_station,{lon},{lat},,not json,",
        f",驿站六,rider_station,{lon},{lat},,24h,",
    )
    response = upload(client, staff, content, "stations.csv")
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert (report["created"], report["updated"]) == (2, 0)
    assert sorted(e["row"] for e in report["errors"]) == [3, 5, 6, 7]
    assert count(session) == 2
    hours = session.scalar(select(Station.opening_hours).where(Station.external_ref == "imp-3"))
    assert hours["mon"] == [["09:00", "17:00"]]


def test_importing_again_updates_by_external_reference(client, session, staff):
    lon, lat = HERE
    upload(client, staff, csv_rows(f"imp-1,旧名,rider_station,{lon},{lat},,24h,"), "s.csv")
    report = upload(client, staff, csv_rows(f"imp-1,新名,rider_station,{lon},{lat},,24h,"), "s.csv")
    assert (report.get_json()["created"], report.get_json()["updated"]) == (0, 1)
    assert session.scalars(select(Station.name).where(Station.external_ref == "imp-1")).all() == [
        "新名"
    ]


def test_a_dry_run_reports_and_keeps_nothing(client, session, staff):
    lon, lat = HERE
    report = upload(
        client, staff, csv_rows(f"imp-1,x,rider_station,{lon},{lat},,24h,"), "s.csv", dry_run="true"
    ).get_json()
    assert (report["created"], report["dry_run"]) == (1, True)
    assert count(session) == 0


def test_a_geojson_import_in_gcj02(client, session, staff):
    gcj = wgs84_to_gcj02(*east_of(30))
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": list(gcj)},
                "properties": {
                    "external_ref": "imp-geo",
                    "name": "高德坐标驿站",
                    "type": "rider_station",
                    "opening_hours": {"mon": [["08:00", "20:00"]]},
                },
            },
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
            },
        ],
    }
    report = upload(
        client, staff, json.dumps(collection), "s.geojson", source_crs="gcj02"
    ).get_json()
    assert report["created"] == 1
    assert [e["row"] for e in report["errors"]] == [1]
    lon, lat = session.execute(
        select(func.ST_X(Station.geom), func.ST_Y(Station.geom)).where(
            Station.external_ref == "imp-geo"
        )
    ).one()
    assert (lon, lat) == pytest.approx(east_of(30), abs=1e-6)


def test_rows_outside_the_jurisdiction_are_reported_not_imported(client, session, staff, area):
    from tests.areas.test_service import centre_of

    lon, lat = centre_of(session, area("110105002024"))
    report = upload(client, staff, csv_rows(f"imp-x,外区,rider_station,{lon},{lat},,24h,"), "s.csv")
    assert report.get_json()["errors"][0]["row"] == 2
    assert count(session) == 0


def test_an_unreadable_file_is_a_422(client, staff, ledger):
    ledger.mark()
    for content, filename in (("name,type\nx,y\n", "s.csv"), ("not json", "s.geojson")):
        response = upload(client, staff, content, filename)
        assert response.status_code == 422, filename
        assert response.mimetype == "application/problem+json"
    assert ledger.changes() == []


def test_export_writes_csv_with_a_bom_and_geojson(client, session, staff):
    lon, lat = HERE
    upload(
        client, staff, csv_rows(f"imp-1,导出驿站,rider_station,{lon},{lat},charging,24h,3"), "s.csv"
    )
    exported = client.get("/api/v1/stations/export?format=csv", headers=staff)
    assert exported.status_code == 200
    text = exported.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    mine = next(r for r in rows if r["external_ref"] == "imp-1")
    assert (mine["name"], mine["amenities"], mine["capacity"]) == ("导出驿站", "charging", "3")
    geo = client.get("/api/v1/stations/export?format=geojson", headers=staff)
    assert geo.mimetype == "application/geo+json"
    names = {f["properties"]["name"] for f in geo.get_json()["features"]}
    assert "导出驿站" in names


def test_the_cli_imports_and_exports(app, session, tmp_path):
    lon, lat = HERE
    path = tmp_path / "stations.csv"
    path.write_text(csv_rows(f"imp-cli,命令行驿站,rider_station,{lon},{lat},,24h,"))
    runner = app.test_cli_runner()
    imported = runner.invoke(args=["stations", "import", str(path)])
    assert "created 1, updated 0, 0 error(s)" in imported.output
    exported = runner.invoke(args=["stations", "export", "--format", "csv"])
    assert "命令行驿站" in exported.output


@pytest.mark.parametrize(
    "feature",
    [
        {
            "type": "Feature",
            "properties": [1, 2],
            "geometry": {"type": "Point", "coordinates": [116.46, 39.9]},
        },
        {"type": "Feature", "properties": {}, "geometry": "Point"},
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": 5}},
        "abc",
    ],
)
def test_a_malformed_feature_is_a_row_error(client, staff, feature):
    collection = {"type": "FeatureCollection", "features": [feature]}
    response = upload(client, staff, json.dumps(collection), "s.geojson")
    assert response.status_code == 200
    assert [e["row"] for e in response.get_json()["errors"]] == [0]


def test_an_oversized_csv_cell_is_a_422(client, session, staff):
    lon, lat = HERE
    content = csv_rows(
        f"imp-1,一号,rider_station,{lon},{lat},,24h,",
        f"imp-2,{'x' * 200_000},rider_station,{lon},{lat},,24h,",
    )
    response = upload(client, staff, content, "s.csv")
    assert response.status_code in (413, 422)
    assert response.mimetype == "application/problem+json"
    assert count(session) == 0  # the file is refused whole, its good rows too


def test_a_far_future_period_is_a_422(client, staff):
    lon, lat = HERE
    upload(client, staff, csv_rows(f"imp-1,x,rider_station,{lon},{lat},,24h,"), "s.csv")
    exported = client.get("/api/v1/stations/export?format=csv", headers=staff).get_data(
        as_text=True
    )
    assert "imp-1" in exported
    response = client.get(
        "/api/v1/stations/visits/summary?from=2026-01-01&to=9999-12-31", headers=staff
    )
    assert response.status_code == 422


def test_a_geojson_export_imports_back_unchanged(client, session, staff):
    lon, lat = HERE
    upload(client, staff, csv_rows(f"imp-rt,往返驿站,rider_station,{lon},{lat},,24h,"), "s.csv")
    exported = client.get("/api/v1/stations/export?format=geojson", headers=staff).get_data(
        as_text=True
    )
    report = upload(client, staff, exported, "s.geojson").get_json()
    assert report["errors"] == []
    assert report["created"] == 0 and report["updated"] >= 1


def test_import_does_not_tell_what_exists_elsewhere(client, session, staff, token_for, area):
    from tests.areas.test_service import centre_of

    lon, lat = centre_of(session, area("110105002024"))
    admin = token_for("admin")
    upload(client, admin, csv_rows(f"imp-far,外区驿站,rider_station,{lon},{lat},,24h,"), "s.csv")
    report = upload(
        client,
        staff,
        csv_rows(
            f"imp-far,改名,rider_station,{HERE[0]},{HERE[1]},,24h,",
            f"imp-new,新站,rider_station,{lon},{lat},,24h,",
        ),
        "s.csv",
    ).get_json()
    assert [e["detail"] for e in report["errors"]] == ["outside your jurisdiction"] * 2
