"""Where each bound sits, to the last representable step (issue #22): a `>` written for `>=` (or
the reverse) moves a bound by one step, and only a value exactly on it tells them apart.

Coordinates: -180..180 and -90..90, both ends inside, in the shared location schema and the
bbox field. Times: the shared time fields' bounds and UTC offset limits are inside. (The
check-in reader's bounds: tests/patrols/test_boundaries.py.)"""

from __future__ import annotations

import datetime as dt
import math

import pytest
from marshmallow import ValidationError

from app.core.fields import BboxField, BoundedDateTime, LocationSchema

BEYOND_LON = math.nextafter(180.0, math.inf)
BEYOND_LAT = math.nextafter(90.0, math.inf)
STEP = dt.timedelta(microseconds=1)
T = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


# -- coordinates ---------------------------------------------------------------------------------

EDGES = [(180, 0), (-180, 0), (180.0, 90.0), (-180.0, -90.0), (0, 90), (0, -90)]
BEYOND = [
    (BEYOND_LON, 0),
    (-BEYOND_LON, 0),
    (180.0000001, 0),
    (0, BEYOND_LAT),
    (0, -BEYOND_LAT),
    (0, 90.0000001),
]


@pytest.mark.parametrize(("lon", "lat"), EDGES)
def test_the_ends_of_the_ranges_are_places(lon, lat):
    assert LocationSchema().load({"lon": lon, "lat": lat}) == {"lon": lon, "lat": lat}


@pytest.mark.parametrize(("lon", "lat"), BEYOND)
def test_one_step_beyond_the_ranges_is_refused(lon, lat):
    with pytest.raises(ValidationError) as refused:
        LocationSchema().load({"lon": lon, "lat": lat})
    assert set(refused.value.messages) == {"lon" if lon else "lat"}


def test_a_bbox_may_reach_the_ends_of_the_ranges_and_no_further():
    field = BboxField()
    assert field.deserialize("-180,-90,180,90") == (-180.0, -90.0, 180.0, 90.0)
    for value in (
        f"-180,-90,{BEYOND_LON!r},90",
        f"{-BEYOND_LON!r},-90,180,90",
        f"-180,-90,180,{BEYOND_LAT!r}",
        f"-180,{-BEYOND_LAT!r},180,90",
        "10,20,10,30",  # west == east
        "10,30,20,30",  # south == north
    ):
        with pytest.raises(ValidationError):
            field.deserialize(value)


# -- time fields ---------------------------------------------------------------------------------


def test_a_time_fields_bounds_are_inside_it():
    field = BoundedDateTime(earliest=T, latest=T + dt.timedelta(hours=1))
    assert field.deserialize(T.isoformat()) == T
    assert field.deserialize((T + dt.timedelta(hours=1)).isoformat()) == T + dt.timedelta(hours=1)
    for outside in (T - STEP, T + dt.timedelta(hours=1) + STEP):
        with pytest.raises(ValidationError, match="Must be between"):
            field.deserialize(outside.isoformat())


def test_the_offsets_bounds_are_inside():
    field = BoundedDateTime(earliest=T - dt.timedelta(days=2), latest=T + dt.timedelta(days=2))
    for hours in (-12, 14):
        shifted = T.astimezone(dt.timezone(dt.timedelta(hours=hours)))
        assert field.deserialize(shifted.isoformat()) == T
    for offset in (-dt.timedelta(hours=12, minutes=1), dt.timedelta(hours=14, minutes=1)):
        with pytest.raises(ValidationError, match="offset"):
            field.deserialize(T.astimezone(dt.timezone(offset)).isoformat())
