"""The public area endpoints."""

from __future__ import annotations

import pytest

from geo.crs import wgs84_to_gcj02


def test_areas_are_listed_by_level_and_parent(client, area):
    jianwai = area("110105001000")
    response = client.get(f"/api/v1/areas?level=community&parent_id={jianwai.id}&page_size=100")
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == len(body["items"]) > 0
    assert {a["level"] for a in body["items"]} == {"community"}
    assert {a["subdistrict_id"] for a in body["items"]} == {str(jianwai.id)}
    codes = [a["code"] for a in body["items"]]
    assert codes == sorted(codes)


def test_areas_can_be_searched_by_name(client):
    body = client.get("/api/v1/areas?q=郎家园&level=community&page_size=100").get_json()
    assert {a["code"] for a in body["items"]} >= {"110105001024", "110105001025"}
    assert body["total"] == len(body["items"])
    assert all("郎家园" in a["name"] and a["level"] == "community" for a in body["items"])


def test_an_area_is_found_by_its_statistical_code(client, area):
    """Issue 17: `?code=` was refused (422) as an unknown filter; an integrator holding a
    statistical code had to page through every area."""
    nanlang = area("110105001024")
    body = client.get("/api/v1/areas?code=110105001024").get_json()
    assert [(a["id"], a["code"]) for a in body["items"]] == [(str(nanlang.id), "110105001024")]
    cell = client.get("/api/v1/areas?code=110105001024-G004").get_json()["items"]
    assert [a["level"] for a in cell] == ["grid_cell"]
    assert client.get("/api/v1/areas?code=999999999999").get_json()["items"] == []
    wrong = client.get("/api/v1/areas?code=1101%27--")
    assert wrong.status_code == 422 and wrong.mimetype == "application/problem+json"


def test_an_area_answers_its_outline_when_asked(client, area):
    chaoyang = area("110105000000")
    bare = client.get(f"/api/v1/areas/{chaoyang.id}").get_json()
    assert bare["geometry"] is None
    assert bare["approximate"] is False
    full = client.get(f"/api/v1/areas/{chaoyang.id}?geometry=true").get_json()["geometry"]
    simple = client.get(f"/api/v1/areas/{chaoyang.id}?geometry=true&simplify_m=200").get_json()
    assert full["type"] == simple["geometry"]["type"] == "MultiPolygon"

    def vertices(geometry):
        return sum(len(ring) for polygon in geometry["coordinates"] for ring in polygon)

    assert vertices(simple["geometry"]) < vertices(full) / 3


def test_an_outline_can_be_answered_in_gcj02(client, area):
    cell = area("110105001024-G001")
    wgs = client.get(f"/api/v1/areas/{cell.id}?geometry=true").get_json()["geometry"]
    gcj = client.get(f"/api/v1/areas/{cell.id}?geometry=true&crs=gcj02").get_json()["geometry"]
    lon, lat = wgs["coordinates"][0][0][0]
    assert gcj["coordinates"][0][0][0] == pytest.approx(list(wgs84_to_gcj02(lon, lat)), abs=1e-6)


def test_locate_converts_phone_coordinates_first(client, session, area):
    from tests.areas.test_service import centre_of

    cell = area("110105001024-G002")
    lon, lat = centre_of(session, cell)
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    found = client.get(f"/api/v1/areas/locate?lon={gcj_lon}&lat={gcj_lat}&coord_system=gcj02")
    assert found.status_code == 200
    assert found.get_json()["grid_cell_id"] == str(cell.id)
    # the same numbers read as WGS-84 are hundreds of metres away: another place
    misread = client.get(f"/api/v1/areas/locate?lon={gcj_lon}&lat={gcj_lat}").get_json()
    assert misread["grid_cell_id"] != str(cell.id)


def test_locate_outside_every_area_answers_nulls(client):
    body = client.get("/api/v1/areas/locate?lon=121.47&lat=31.23").get_json()
    assert body == {
        "district_id": None,
        "subdistrict_id": None,
        "community_id": None,
        "grid_cell_id": None,
    }


@pytest.mark.parametrize(
    "query", ["lon=200&lat=39.9", "lon=116.4", "lon=116.4&lat=39.9&coord_system=utm", "lon=x&lat=1"]
)
def test_locate_refuses_bad_input(client, query):
    response = client.get(f"/api/v1/areas/locate?{query}")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


def test_an_unknown_area_is_a_404(client):
    response = client.get("/api/v1/areas/00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_a_nul_character_in_a_search_is_a_422(client):
    response = client.get("/api/v1/areas?q=%00x")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
