"""GIS tools read our GeoJSON: GDAL (what QGIS opens a URL with, here through pyogrio's wheel)
against gunicorn on a throw-away database, migrated and demo-loaded.

GDAL asks with `Accept: text/plain, application/json`, so it gets GeoJSON by `f=geojson`
(app/core/geojson.py); a GCJ-02 answer reaches it labelled as GCJ-02, not as WGS 84.
"""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Iterator

import pytest

from app.demo import DEMO_PASSWORD
from app.exports.files import write_geojson
from tests.exports.test_files import make_row
from tests.live import demo_database, served
from tests.ops.processes import http

pyogrio = pytest.importorskip("pyogrio")

STAFF = "13800000002"  # the demo community admin of 建外 (110105001000)
VOLUNTEER = "13800000005"
JIANWAI = [(116.4466, 39.9050), (116.4480, 39.9062), (116.4452, 39.9041)]
GDAL_ACCEPT = "text/plain, application/json"  # what GDAL's GeoJSON driver sends
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    with (
        demo_database() as owner_url,
        served(owner_url, tmp_path_factory.mktemp("gunicorn")) as base,
    ):
        yield base


def _token(base: str, phone: str) -> str:
    status, body = http(
        "POST", f"{base}/api/v1/auth/login", {"phone": phone, "password": DEMO_PASSWORD}
    )
    assert status == 200, body
    return body["access_token"]


@pytest.fixture(scope="module")
def staff_token(server) -> str:
    return _token(server, STAFF)


@pytest.fixture(scope="module")
def tips(server) -> list[str]:
    """Three tips in 建外 sent by a volunteer through the API."""
    bearer = {"Authorization": f"Bearer {_token(server, VOLUNTEER)}"}
    status, categories = http("GET", f"{server}/api/v1/tip-categories", headers=bearer)
    assert status == 200, categories
    ids = []
    for n, (lon, lat) in enumerate(JIANWAI):
        category = categories["items"][n % len(categories["items"])]["code"]
        body = {
            "category": category,
            "description": f"楼道里堆放杂物，第{n}处",
            "location": {"lon": lon, "lat": lat},
        }
        status, tip = http("POST", f"{server}/api/v1/tips", body, headers=bearer)
        assert status == 201, tip
        ids.append(tip["id"])
    return ids


def _get(url: str, token: str | None = None, accept: str = GDAL_ACCEPT):
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback only
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def _gdal(url: str, token: str | None = None, accept: str | None = None) -> dict:
    """What GDAL makes of `url` as ogrinfo and QGIS open it: the GeoJSON driver fetching the
    URL itself with its own Accept (`GeoJSON:` keeps pyogrio from turning the URL into a
    /vsicurl/ path, which sends no such Accept and caches by URL), the bearer token (and
    another Accept, when given) in GDAL's HTTP headers configuration."""
    headers = [f"Authorization: Bearer {token}"] if token else []
    if accept:
        headers.append(f"Accept: {accept}")
    pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADERS": "\r\n".join(headers) or None})
    try:
        # Times as GDAL read them, as text: pyogrio 0.13 turns GDAL's millisecond seconds into
        # Python datetimes itself and fails on a time whose microseconds round up to the next
        # second (…:05.9996 -> microsecond 1_000_000); GDAL itself and QGIS read them fine.
        meta, fids, _geometries, _fields = pyogrio.raw.read(
            f"GeoJSON:{url}", return_fids=True, datetime_as_string=True
        )
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADERS": None})
    return {
        "count": len(fids),
        "geometry_type": meta["geometry_type"],
        "crs": meta["crs"],
        "fields": list(meta["fields"]),
    }


def _features(url: str, token: str | None = None) -> list[dict]:
    status, _headers, body = _get(url, token, accept="application/geo+json")
    assert status == 200, body
    return json.loads(body)["features"]


# -- JSON or GeoJSON endpoints -------------------------------------------------------------------


@pytest.mark.parametrize("query", ["f=geojson", "f=geojson&bbox=116.3,39.8,116.6,40.0"])
def test_gdal_reads_stations_as_points_with_f_geojson(server, query):
    url = f"{server}/api/v1/stations?{query}"
    expected = len(_features(url))
    assert expected > 0
    read = _gdal(url)
    assert (read["count"], read["geometry_type"], read["crs"]) == (expected, "Point", "EPSG:4326")


def test_gdal_reads_nearby_stations_as_points_with_f_geojson(server):
    url = f"{server}/api/v1/stations/nearby?lon=116.4466&lat=39.905&radius_m=20000&f=geojson"
    read = _gdal(url)
    assert (read["count"], read["geometry_type"]) == (len(_features(url)), "Point")
    assert read["count"] > 0


def test_gdal_reads_tips_as_points_with_f_geojson(server, staff_token, tips):
    url = f"{server}/api/v1/tips?f=geojson"
    read = _gdal(url, staff_token)
    assert read["geometry_type"] == "Point" and read["crs"] == "EPSG:4326"
    assert read["count"] == len(_features(url, staff_token)) >= len(tips)
    assert "status" in read["fields"]


def test_without_f_accept_still_decides(server, staff_token, tips):
    """Accept negotiation stays: GDAL told to ask for GeoJSON gets it without `f`; with its
    own Accept and no `f` it gets the JSON page, which is no GeoJSON (GDAL 3.12 refuses it)."""
    url = f"{server}/api/v1/tips"
    read = _gdal(url, staff_token, accept="application/geo+json")
    assert (read["count"], read["geometry_type"]) == (len(_features(url, staff_token)), "Point")
    with pytest.raises(pyogrio.errors.DataSourceError):
        _gdal(url, staff_token)


def test_f_wins_over_accept(server, staff_token, tips):
    status, headers, body = _get(
        f"{server}/api/v1/tips?f=json", staff_token, accept="application/geo+json"
    )
    assert status == 200 and headers.get_content_type() == "application/json"
    assert "items" in json.loads(body)
    status, headers, _ = _get(f"{server}/api/v1/stations?f=geojson", accept="application/json")
    assert status == 200 and headers.get_content_type() == "application/geo+json"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/tips?f=xml",
        "/api/v1/stations?f=GeoJSON",
        "/api/v1/stations/nearby?lon=116.4&lat=39.9&f=csv",
        "/api/v1/grid/tips?f=json",
        "/api/v1/grid/hotspots?f=json",
        "/api/v1/grid/risk-coverage?f=json",
        "/api/v1/public/heatmap?bbox=116.3,39.8,116.6,40.0&f=json",
        "/api/v1/coverage/cells?f=json",
        "/api/v1/coverage/gaps?f=json",
        "/api/v1/stations/export?f=json",
    ],
)
def test_unknown_or_refused_f_is_a_422_problem(server, staff_token, path):
    status, headers, body = _get(f"{server}{path}", staff_token)
    assert status == 422, body
    assert headers.get_content_type() == PROBLEM
    assert "f" in json.dumps(json.loads(body))


def test_gdal_reads_the_station_export_with_f_geojson(server, staff_token):
    url = f"{server}/api/v1/stations/export?f=geojson"
    read = _gdal(url, staff_token)
    assert (read["geometry_type"], read["crs"]) == ("Point", "EPSG:4326")
    assert read["count"] == len(_features(url, staff_token)) > 0
    assert read["count"] == _gdal(f"{url}&format=csv", staff_token)["count"]  # f wins


# -- the coordinate system ----------------------------------------------------------------------


@pytest.mark.parametrize(("crs", "name"), [("gcj02", "GCJ-02"), ("bd09", "BD-09")])
def test_gdal_reads_a_gcj02_answer_as_gcj02_not_wgs84(server, staff_token, tips, crs, name):
    for url in (
        f"{server}/api/v1/tips?f=geojson&crs={crs}",
        f"{server}/api/v1/stations?f=geojson&crs={crs}",
    ):
        read = _gdal(url, staff_token)
        assert read["count"] > 0 and read["geometry_type"] == "Point"
        assert read["crs"] != "EPSG:4326"
        assert f'GEOGCS["{name} (urn:qunfang:crs:{crs})"' in read["crs"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/tips?f=geojson&crs=gcj02",
        "/api/v1/stations?f=geojson&crs=gcj02",
        "/api/v1/stations/nearby?lon=116.4466&lat=39.905&radius_m=20000&f=geojson&crs=gcj02",
        "/api/v1/grid/tips?crs=gcj02",
        "/api/v1/coverage/gaps?crs=gcj02",
    ],
)
def test_gcj02_geojson_says_so_in_header_and_member(server, staff_token, tips, path):
    status, headers, body = _get(f"{server}{path}", staff_token)
    assert status == 200, body
    assert headers["Content-Crs"] == "<urn:qunfang:crs:gcj02>"
    document = json.loads(body)
    assert document["crs"]["type"] == "name"
    assert "urn:qunfang:crs:gcj02" in document["crs"]["properties"]["name"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/tips?f=geojson",
        "/api/v1/stations?f=geojson",
        "/api/v1/grid/tips",
        "/api/v1/public/heatmap?bbox=116.3,39.8,116.6,40.0",
        "/api/v1/coverage/cells",
    ],
)
def test_wgs84_geojson_has_the_crs84_header_and_no_member(server, staff_token, tips, path):
    status, headers, body = _get(f"{server}{path}", staff_token)
    assert status == 200, body
    assert headers["Content-Crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    assert "crs" not in json.loads(body)


# -- GeoJSON-only endpoints ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/grid/tips?cells=hex",
        "/api/v1/grid/tips",
        "/api/v1/coverage/gaps",
    ],
)
@pytest.mark.parametrize("f", ["", "&f=geojson"])
def test_gdal_reads_cells_as_polygons(server, staff_token, tips, path, f):
    url = f"{server}{path}{'?' if '?' not in path else ''}{f}"
    read = _gdal(url, staff_token)
    assert read["count"] == len(_features(url, staff_token)) > 0
    assert read["geometry_type"] in ("Polygon", "MultiPolygon")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/grid/hotspots?f=geojson",
        "/api/v1/grid/risk-coverage?f=geojson",
        "/api/v1/coverage/cells?f=geojson",
        "/api/v1/public/heatmap?bbox=116.3,39.8,116.6,40.0&f=geojson",
    ],
)
def test_gdal_opens_every_cell_layer_with_f_geojson(server, staff_token, tips, path):
    url = f"{server}{path}"
    assert _gdal(url, staff_token)["count"] == len(_features(url, staff_token))


# -- the clue-batch export's file -------------------------------------------------------------


def test_gdal_reads_the_clue_batch_geojson_file(tmp_path):
    out = io.BytesIO()
    write_geojson(iter([make_row(), make_row(tip_id="t2", lon=116.4)]), out)
    path = tmp_path / "tips.geojson"
    path.write_bytes(out.getvalue())
    info = pyogrio.read_info(path)
    assert (info["features"], info["geometry_type"], info["crs"]) == (2, "Point", "EPSG:4326")
