"""The staff tip list is written by orjson from rows (app/tips/routes.py), not dumped by
marshmallow from Tip objects; TipSchema stays its contract: for real tips, each listed item holds
what the schema dumps (same keys, types and values), in JSON and in GeoJSON."""

from __future__ import annotations

import pytest
from geoalchemy2.shape import to_shape

from app.tips.models import Tip
from app.tips.schemas import TipSchema
from geo.crs import from_wgs84


@pytest.fixture
def tips(submit, staff, client, session):
    """Tips whose fields take every kind of value: named and anonymous, with and without a
    position, an occurrence time, a transition (assignee, public summary)."""
    user, headers = staff
    made = [
        submit(headers=headers).json["id"],
        submit(location=None, address_text="建国门外大街 1 号 东门").json["id"],
        submit(at=(116.45541, 39.90972), occurred_at="2026-11-20T09:15:30.250000+08:00").json["id"],
    ]
    tip = session.get(Tip, made[0])
    tip.public_summary = "电动车被撬 (建外)"
    tip.assignee_id = user.id
    session.flush()
    return made


def expected(session, tip_id: str, crs: str) -> dict:
    """What TipSchema dumps for the stored tip (as the list dumped it before)."""
    tip = session.get(Tip, tip_id)
    session.refresh(tip)
    values = {name: getattr(tip, name) for name in TipSchema._declared_fields if hasattr(Tip, name)}
    location = None
    if tip.geom is not None:
        point = to_shape(tip.geom)
        lon, lat = from_wgs84(point.x, point.y, crs)
        location = {"lon": round(lon, 7), "lat": round(lat, 7), "accuracy_m": tip.accuracy_m}
    values.update(category_code=tip.category_code, location=location)
    return TipSchema().dump(values)


def same(answered: dict, dumped: dict) -> None:
    assert answered.keys() == dumped.keys()
    for key, value in dumped.items():
        assert answered[key] == value, key
        assert type(answered[key]) is type(value), key
        if isinstance(value, dict):
            same(answered[key], value)


@pytest.mark.parametrize("crs", ["wgs84", "gcj02"])
def test_the_staff_list_is_what_the_schema_dumps(client, session, token_for, tips, crs):
    headers = token_for("admin")  # sees tips outside every area too (no position)
    query = {"crs": crs, "page_size": 100}
    response = client.get("/api/v1/tips", query_string=query, headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    page = response.get_json()
    assert set(page) == {"items", "page", "page_size", "total"}
    by_id = {item["id"]: item for item in page["items"]}
    for tip_id in tips:
        same(by_id[tip_id], expected(session, tip_id, crs))
    assert by_id[tips[1]]["location"] is None


def test_the_staff_list_as_geojson_is_what_the_schema_dumps(client, session, staff, tips):
    _user, headers = staff
    response = client.get(
        "/api/v1/tips?page_size=100", headers={**headers, "Accept": "application/geo+json"}
    )
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    collection = response.get_json(force=True)
    assert set(collection) == {"type", "features", "page", "total"}
    by_id = {feature["id"]: feature for feature in collection["features"]}
    assert tips[1] not in by_id  # no position, no Feature
    for tip_id in (tips[0], tips[2]):
        feature = by_id[tip_id]
        dumped = expected(session, tip_id, "wgs84")
        location = dumped.pop("location")
        assert feature["geometry"] == {
            "type": "Point",
            "coordinates": [location["lon"], location["lat"]],
        }
        same(feature["properties"], dumped)
