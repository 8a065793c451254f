"""WGS-84 ⇄ GCJ-02 ⇄ BD-09 against published reference values, and round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo import crs

# Published by wandergis/coordtransform (test/app.js) for the input (116.404, 39.915).
REFERENCE = {
    "wgs84_to_gcj02": (116.41024449916938, 39.91640428150164),
    "gcj02_to_bd09": (116.41036949371029, 39.92133699351021),
    "bd09_to_gcj02": (116.39762729119315, 39.90865673957631),
    # coordtransform's one-step inverse, accurate to a few metres only.
    "gcj02_to_wgs84": (116.39775550083061, 39.91359571849836),
}


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Equirectangular distance; plenty for separations of metres."""
    mean_lat = math.radians((a[1] + b[1]) / 2)
    dx = math.radians(a[0] - b[0]) * math.cos(mean_lat)
    dy = math.radians(a[1] - b[1])
    return 6_371_008.8 * math.hypot(dx, dy)


def test_wgs84_to_gcj02_matches_the_reference():
    assert crs.wgs84_to_gcj02(116.404, 39.915) == pytest.approx(
        REFERENCE["wgs84_to_gcj02"], abs=1e-12
    )


def test_gcj02_to_bd09_agrees_with_the_reference_within_centimetres():
    assert metres(crs.gcj02_to_bd09(116.404, 39.915), REFERENCE["gcj02_to_bd09"]) < 0.05


def test_bd09_to_gcj02_agrees_with_the_reference_within_centimetres():
    assert metres(crs.bd09_to_gcj02(116.404, 39.915), REFERENCE["bd09_to_gcj02"]) < 0.05


def test_gcj02_to_wgs84_is_an_exact_inverse_unlike_the_one_step_reference():
    got = crs.gcj02_to_wgs84(116.404, 39.915)
    assert metres(got, REFERENCE["gcj02_to_wgs84"]) < 5
    assert metres(crs.wgs84_to_gcj02(*got), (116.404, 39.915)) < 0.001


def test_the_offset_inside_china_is_hundreds_of_metres():
    assert 100 < metres(crs.wgs84_to_gcj02(116.404, 39.915), (116.404, 39.915)) < 1000


china = st.tuples(st.floats(73.0, 135.0), st.floats(18.0, 54.0)).filter(lambda p: crs.in_china(*p))
# Far from the region's edges, where every GCJ-02/BD-09 point is the image of a WGS-84 point
# (within a few hundred metres of an edge, some shifted points have no preimage).
beijing = st.tuples(st.floats(115.4, 117.6), st.floats(39.4, 41.1))


@settings(max_examples=500)
@given(china)
def test_round_trips_from_wgs84_stay_within_half_a_metre_anywhere_in_china(point):
    lon, lat = point
    for system in crs.CoordSystem:
        shifted = crs.from_wgs84(lon, lat, system)
        assert metres(crs.to_wgs84(*shifted, system), point) < 0.5
        assert metres(crs.from_wgs84(*crs.to_wgs84(*shifted, system), system), shifted) < 0.5
    assert (
        metres(
            crs.bd09_to_gcj02(*crs.gcj02_to_bd09(*crs.wgs84_to_gcj02(lon, lat))),
            crs.wgs84_to_gcj02(lon, lat),
        )
        < 0.5
    )


@settings(max_examples=300)
@given(beijing)
def test_round_trips_from_phone_coordinates_stay_within_half_a_metre(point):
    lon, lat = point
    assert metres(crs.wgs84_to_gcj02(*crs.gcj02_to_wgs84(lon, lat)), point) < 0.5
    assert metres(crs.wgs84_to_bd09(*crs.bd09_to_wgs84(lon, lat)), point) < 0.5
    assert metres(crs.gcj02_to_bd09(*crs.bd09_to_gcj02(lon, lat)), point) < 0.5


@pytest.mark.parametrize(
    "name, lon, lat",
    [
        ("Tokyo", 139.6917, 35.6895),
        ("Seoul", 126.9780, 37.5665),
        ("Taipei", 121.5654, 25.0330),
        ("Ulaanbaatar", 106.9057, 47.8864),
        ("Hanoi", 105.8342, 21.0278),
        ("London", -0.1276, 51.5072),
        ("Sydney", 151.2093, -33.8688),
    ],
)
def test_points_outside_china_pass_through_unchanged(name, lon, lat):
    assert not crs.in_china(lon, lat), name
    for system in crs.CoordSystem:
        assert crs.to_wgs84(lon, lat, system) == (lon, lat)
        assert crs.from_wgs84(lon, lat, system) == (lon, lat)


@pytest.mark.parametrize(
    "name, lon, lat",
    [
        ("Beijing", 116.40, 39.90),
        ("Urumqi", 87.62, 43.83),
        ("Harbin", 126.53, 45.80),
        ("Sanya", 109.51, 18.25),
    ],
)
def test_mainland_cities_are_in_china(name, lon, lat):
    assert crs.in_china(lon, lat), name


def test_an_unknown_system_is_refused():
    with pytest.raises(ValueError):
        crs.to_wgs84(116.4, 39.9, "utm")


@given(st.floats(-180, 180), st.floats(-90, 90), st.sampled_from(list(crs.CoordSystem)))
def test_any_valid_point_converts_without_error_and_stays_in_range(lon, lat, system):
    for converted in (crs.to_wgs84(lon, lat, system), crs.from_wgs84(lon, lat, system)):
        assert -180 <= converted[0] <= 180
        assert -90 <= converted[1] <= 90
