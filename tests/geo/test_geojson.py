from __future__ import annotations

import pytest
from shapely.geometry import GeometryCollection, Point, Polygon

from geo.geojson import GeoJSONError, feature, feature_collection, to_geojson, to_shape


def test_a_feature_or_a_bare_geometry_gives_the_same_shape():
    geometry = {"type": "Point", "coordinates": [116.4, 39.9]}
    assert to_shape(geometry).equals(
        to_shape({"type": "Feature", "geometry": geometry, "properties": {}})
    )


@pytest.mark.parametrize(
    "obj, message",
    [
        ({"type": "Point", "coordinates": [181, 0]}, "longitude"),
        ({"type": "Point", "coordinates": [0, -91]}, "latitude"),
        ({"type": "Point", "coordinates": []}, "empty"),
        ({"type": "Circle", "coordinates": [0, 0]}, "expected a geometry"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}, "malformed"),
        ({"type": "Feature", "geometry": None}, "no geometry"),
        ("POINT(0 0)", "JSON object"),
        ({"type": "LineString", "coordinates": [[0, 0]]}, "malformed"),
        ({"type": "Point", "coordinates": ["1", 2]}, "numbers only"),
        ({"type": "Point", "coordinates": [True, 2]}, "numbers only"),
        ({"type": "Point", "coordinates": [float("nan"), 2]}, "finite"),
    ],
)
def test_bad_geojson_is_refused_with_a_reason(obj, message):
    with pytest.raises(GeoJSONError, match=message):
        to_shape(obj)


def test_allowed_types_are_enforced():
    with pytest.raises(GeoJSONError, match="Polygon"):
        to_shape({"type": "Point", "coordinates": [0, 0]}, allowed={"Polygon", "MultiPolygon"})


def test_output_is_rounded_to_about_a_centimetre():
    out = to_geojson(Point(116.123456789, 39.987654321))
    assert out == {"type": "Point", "coordinates": [116.1234568, 39.9876543]}


def test_feature_collection_shape():
    collection = feature_collection(
        [feature(Polygon([(0, 0), (1, 0), (1, 1)]), {"n": 1}, feature_id="a")]
    )
    assert collection["type"] == "FeatureCollection"
    (item,) = collection["features"]
    assert item["id"] == "a"
    assert item["properties"] == {"n": 1}
    assert item["geometry"]["type"] == "Polygon"


def test_a_geometry_collection_is_written_part_by_part():
    collection = GeometryCollection([Point(1, 2), Polygon([(0, 0), (1, 0), (1, 1)])])
    out = to_geojson(collection)
    assert out["type"] == "GeometryCollection"
    assert [g["type"] for g in out["geometries"]] == ["Point", "Polygon"]
