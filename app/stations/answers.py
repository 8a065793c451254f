"""The answers of the public map (`GET /stations?bbox=`) and the nearby search, the stations' hot
lists: rows of `service.listing_columns()` written by orjson (app/core/fastjson.py), never a
Station object, a shapely point or a marshmallow dump per row. StationSchema stays the contract
(tests/stations/test_fast_answers.py compares the two)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.core.fastjson import raw
from geo.crs import from_wgs84

_JSON_TEXT = ("opening_hours", "hours_exceptions")


def item(row: Mapping[str, Any], crs: str) -> dict[str, Any]:
    """A listing row as StationSchema dumps it, with its position in `crs` (7 decimals, about
    1 cm) and `distance_m` (0.1 m) when the row has one."""
    values = dict(row)
    lon, lat = from_wgs84(values["lon"], values["lat"], crs)
    values["lon"], values["lat"] = round(lon, 7), round(lat, 7)
    for name in _JSON_TEXT:
        if values[name] is not None:
            values[name] = raw(values[name])
    distance = values.get("distance_m")
    values["distance_m"] = None if distance is None else round(distance, 1)
    return values


def feature_collection(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Items as an RFC 7946 FeatureCollection of Points: the position is the geometry, every
    other field a property, the id the Feature's id."""
    features = []
    for values in items:
        properties = dict(values)
        position = [properties.pop("lon"), properties.pop("lat")]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": position},
                "properties": properties,
                "id": properties["id"],
            }
        )
    return {"type": "FeatureCollection", "features": features}
