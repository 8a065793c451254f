"""GeoJSON (RFC 7946) ⇄ shapely, with the checks every input needs.

Coordinates are WGS-84 lon/lat; conversion from GCJ-02/BD-09 happens before (geo.crs).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

from shapely.errors import ShapelyError
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

GEOMETRY_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)


class GeoJSONError(ValueError):
    """The input is not a usable GeoJSON geometry; the message says why."""


def geometry_from_geojson(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The geometry member of a GeoJSON Feature, or the geometry itself."""
    if not isinstance(obj, Mapping):
        raise GeoJSONError("a GeoJSON object must be a JSON object")
    if obj.get("type") == "Feature":
        geometry = obj.get("geometry")
        if geometry is None:
            raise GeoJSONError("the Feature has no geometry")
        return geometry
    return obj


def to_shape(obj: Mapping[str, Any], allowed: Collection[str] = GEOMETRY_TYPES) -> BaseGeometry:
    """A shapely geometry from a GeoJSON geometry or Feature, checked for type and range.

    Invalid polygons (self-intersections) are returned as they are: callers that store areas
    repair them in PostGIS (ST_MakeValid), where the index lives.
    """
    geometry = geometry_from_geojson(obj)
    kind = geometry.get("type")
    if kind not in allowed:
        raise GeoJSONError(
            f"expected a geometry of type {', '.join(sorted(allowed))}, got {kind!r}"
        )
    _check_numbers(geometry.get("coordinates"), kind)
    try:
        geom = shape(geometry)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ShapelyError) as exc:
        raise GeoJSONError(f"malformed {kind} coordinates: {exc}") from exc
    if geom.is_empty:
        raise GeoJSONError(f"the {kind} is empty")
    min_lon, min_lat, max_lon, max_lat = geom.bounds
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise GeoJSONError("coordinates must be longitude -180..180 and latitude -90..90")
    return geom


def _check_numbers(coordinates: Any, kind: str) -> None:
    """Positions are arrays of real numbers (not strings, booleans or NaN), nested as deep as
    the type says; shapely would accept some of those silently."""
    if isinstance(coordinates, list):
        for item in coordinates:
            _check_numbers(item, kind)
    elif isinstance(coordinates, bool) or not isinstance(coordinates, (int, float)):
        raise GeoJSONError(f"malformed {kind} coordinates: positions hold numbers only")
    elif not math.isfinite(coordinates):
        raise GeoJSONError(f"malformed {kind} coordinates: positions hold finite numbers only")


def to_geojson(geom: BaseGeometry, precision: int = 7) -> dict[str, Any]:
    """A GeoJSON geometry, rounded to `precision` decimals (7 ≈ 1 cm; RFC 7946 §11.2)."""
    out = dict(mapping(geom))
    if "geometries" in out:  # a GeometryCollection (ST_MakeValid can make one)
        out["geometries"] = [to_geojson(part, precision) for part in geom.geoms]
    else:
        out["coordinates"] = _round(out["coordinates"], precision)
    return out


def _round(coordinates: Any, precision: int) -> Any:
    if isinstance(coordinates, (int, float)):
        return round(coordinates, precision)
    return [_round(c, precision) for c in coordinates]


def feature(
    geom: BaseGeometry | Mapping[str, Any] | None,
    properties: Mapping[str, Any],
    feature_id: Any = None,
) -> dict:
    """A Feature of a shapely geometry, or of a GeoJSON geometry given as it is."""
    out: dict[str, Any] = {
        "type": "Feature",
        "geometry": to_geojson(geom) if isinstance(geom, BaseGeometry) else geom,
        "properties": dict(properties),
    }
    if feature_id is not None:
        out["id"] = feature_id
    return out


def feature_collection(features: list[dict]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}
