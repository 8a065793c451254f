"""The station lists are written by orjson (app/stations/answers.py), not dumped by marshmallow;
StationSchema stays their contract: for real rows, each answer holds what the schema dumps from
the Station objects (same keys, types and values), in JSON and in GeoJSON, in every coordinate
system."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from geoalchemy2.shape import to_shape

from app.stations.models import Station
from app.stations.schemas import StationSchema
from geo.crs import from_wgs84

# new_station is a fixture of the route tests, used here as it is there.
from tests.stations.test_routes import HERE, east_of, new_station  # noqa: F401

BBOX = f"{HERE[0] - 0.01},{HERE[1] - 0.01},{HERE[0] + 0.01},{HERE[1] + 0.01}"
GEOJSON = {"Accept": "application/geo+json"}


@pytest.fixture
def stations(session, new_station):  # noqa: F811
    """Three stations whose fields take every kind of value: nulls and not, Chinese text,
    exceptions, a verification time with microseconds, a station closed for a day."""
    made = [
        new_station("骑手驿站 · 建外", east_of(10)),
        new_station(
            "volunteer post",
            east_of(40),
            type="volunteer_post",
            address="建国门外大街 1 号",
            phone="010-6500 0000",
            operator="朝阳群众",
            capacity=12,
            amenities=["wifi", "aed"],
            opening_hours={"mon": [["08:00", "20:00"]], "sat": [["22:00", "06:00"]]},
            hours_exceptions=[{"date": "2026-10-01", "closed": True}],
            external_ref=f"ref-{uuid.uuid4().hex[:8]}",
        ),
        new_station("closed today", east_of(70), opening_hours={}),
    ]
    first = session.get(Station, made[0]["id"])
    first.last_verified_at = dt.datetime(2026, 11, 20, 1, 2, 3, 450000, tzinfo=dt.UTC)
    session.flush()
    return [m["id"] for m in made]


def expected(session, station_id: str, crs: str, **extra) -> dict:
    """What StationSchema dumps for the stored station (as the views dumped it before)."""
    station = session.get(Station, station_id)
    session.refresh(station)
    point = to_shape(station.geom)
    lon, lat = from_wgs84(point.x, point.y, crs)
    fields = StationSchema._declared_fields
    values = {name: getattr(station, name) for name in fields if hasattr(Station, name)}
    values.update(lon=round(lon, 7), lat=round(lat, 7), **{"distance_m": None, **extra})
    return StationSchema().dump(values)


def same(answered: dict, dumped: dict) -> None:
    assert answered.keys() == dumped.keys()
    for key, value in dumped.items():
        assert answered[key] == value, key
        assert type(answered[key]) is type(value), key


@pytest.mark.parametrize("crs", ["wgs84", "gcj02", "bd09"])
def test_the_map_list_is_what_the_schema_dumps(client, session, stations, crs):
    response = client.get("/api/v1/stations", query_string={"bbox": BBOX, "crs": crs})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    page = response.get_json()
    assert {"page", "page_size", "total", "items"} == set(page)
    by_id = {item["id"]: item for item in page["items"]}
    for station_id in stations:
        item = by_id[station_id]
        same(item, expected(session, station_id, crs, open_now=item["open_now"]))
    assert by_id[stations[0]]["open_now"] is True
    assert by_id[stations[2]]["open_now"] is False


@pytest.mark.parametrize("crs", ["wgs84", "gcj02"])
def test_the_map_as_geojson_is_what_the_schema_dumps(client, session, stations, crs):
    response = client.get(
        "/api/v1/stations", query_string={"bbox": BBOX, "crs": crs}, headers=GEOJSON
    )
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    collection = response.get_json()
    # Off WGS-84 the collection names its system (app/core/geojson.py), RFC 7946 has no way to.
    assert set(collection) == {"type", "features"} | ({"crs"} if crs != "wgs84" else set())
    assert collection["type"] == "FeatureCollection"
    by_id = {feature["id"]: feature for feature in collection["features"]}
    for station_id in stations:
        feature = by_id[station_id]
        assert set(feature) == {"type", "geometry", "properties", "id"}
        assert feature["type"] == "Feature"
        dumped = expected(session, station_id, crs, open_now=feature["properties"]["open_now"])
        position = [dumped.pop("lon"), dumped.pop("lat")]
        assert feature["geometry"] == {"type": "Point", "coordinates": position}
        same(feature["properties"], dumped)


@pytest.mark.parametrize("geojson", [False, True])
def test_nearby_is_what_the_schema_dumps(client, session, stations, geojson):
    response = client.get(
        "/api/v1/stations/nearby",
        query_string={"lon": HERE[0], "lat": HERE[1], "radius_m": 500, "crs": "gcj02"},
        headers=GEOJSON if geojson else {},
    )
    assert response.status_code == 200
    body = response.get_json()
    if geojson:
        assert response.mimetype == "application/geo+json"
        items = []
        for feature in body["features"]:
            lon, lat = feature["geometry"]["coordinates"]
            items.append({**feature["properties"], "lon": lon, "lat": lat})
    else:
        assert response.mimetype == "application/json"
        items = body["items"]
    by_id = {item["id"]: item for item in items}
    for station_id in stations:
        item = by_id[station_id]
        assert isinstance(item["distance_m"], float)
        dumped = expected(
            session,
            station_id,
            "gcj02",
            open_now=item["open_now"],
            distance_m=item["distance_m"],
        )
        same(item, dumped)
    assert [by_id[s]["distance_m"] for s in stations] == pytest.approx([10, 40, 70], abs=0.5)


def test_chinese_text_is_sent_as_utf8_not_escaped(client, stations):
    body = client.get("/api/v1/stations", query_string={"bbox": BBOX}).data
    assert "骑手驿站 · 建外".encode() in body
    assert b"\\u" not in body


def test_a_page_past_the_end_is_empty_with_the_total(client, stations):
    page = client.get(
        "/api/v1/stations", query_string={"bbox": BBOX, "page": 50, "page_size": 100}
    ).get_json()
    assert page["items"] == [] and page["page"] == 50 and page["total"] >= 3


def test_the_geojson_page_follows_page_and_page_size(client, stations):
    def names(page):
        collection = client.get(
            "/api/v1/stations",
            query_string={"bbox": BBOX, "page": page, "page_size": 2},
            headers=GEOJSON,
        ).get_json()
        return [f["properties"]["name"] for f in collection["features"]]

    listed = client.get(
        "/api/v1/stations", query_string={"bbox": BBOX, "page_size": 100}
    ).get_json()["items"]
    assert names(1) + names(2) == [item["name"] for item in listed][:4]


@pytest.mark.parametrize("crs", ["wgs84", "bd09"])
def test_the_geojson_map_filters_by_type_and_lists_without_a_bbox(client, stations, crs):
    def listed(**query):
        collection = client.get(
            "/api/v1/stations", query_string={"crs": crs, **query}, headers=GEOJSON
        ).get_json()
        return {f["id"]: f["properties"]["type"] for f in collection["features"]}

    posts = listed(bbox=BBOX, type="volunteer_post", page_size=100)
    assert stations[1] in posts and set(posts.values()) == {"volunteer_post"}
    both = listed(bbox=BBOX, type=["volunteer_post", "rider_station"], page_size=100)
    assert set(stations) <= set(both)
    assert set(both.values()) <= {"volunteer_post", "rider_station"}
    assert listed(page_size=100)  # no bbox: the whole map, by name


def test_a_coordinate_is_rounded_as_python_rounds_it(client, new_station):  # noqa: F811
    """PostgreSQL writes the WGS-84 page's positions; they round as round(x, 7) does, also
    where a float8 -> numeric cast (15 digits) would round the other way."""
    at = (116.46040125000001, 39.90750004999999)
    made = new_station("rounding", at)
    bbox = f"{at[0] - 0.001},{at[1] - 0.001},{at[0] + 0.001},{at[1] + 0.001}"
    collection = client.get(
        "/api/v1/stations", query_string={"bbox": bbox}, headers=GEOJSON
    ).get_json()
    feature = next(f for f in collection["features"] if f["id"] == made["id"])
    assert feature["geometry"]["coordinates"] == [round(at[0], 7), round(at[1], 7)]
    assert made["lon"] == round(at[0], 7) and made["lat"] == round(at[1], 7)
