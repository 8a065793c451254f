"""The check-in reader's bounds, to the last representable step (issue #22): a `>` written for
`>=` moves a bound by one step, and only a value exactly on it tells them apart. Coordinates:
-180..180 and -90..90, both ends inside, by the reader's fast path and its schema path. Times: a
check-in's clock-skew allowances (ahead of the server, before the patrol's start, after its end)
and the retention horizon are inside."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.fields import CLOCK_SKEW
from app.patrols import ingest
from app.patrols.models import FLAG_IMPLAUSIBLE_SPEED, FLAG_POOR_ACCURACY
from geo.distance import haversine_m
from tests.core.test_boundaries import BEYOND, BEYOND_LAT, BEYOND_LON, EDGES, STEP, T
from tests.patrols.conftest import item


def _parsed(lon, lat):
    """The check-in reader's verdict, by its fast path (a plain item) and its schema path (the
    same item naming no checkpoint, a key only the schema reads)."""
    at = dt.datetime.now(dt.UTC)
    fast = ingest.parse([item(at, lon=lon, lat=lat)])[0]
    slow = ingest.parse([item(at, lon=lon, lat=lat, checkpoint=None)])[0]
    return fast, slow


@pytest.mark.parametrize(("lon", "lat"), EDGES)
def test_check_ins_at_the_ends_of_the_ranges_are_read(lon, lat):
    for parsed in _parsed(lon, lat):
        assert parsed.outcome == "accepted", parsed.detail
        assert (parsed.lon, parsed.lat) == (lon, lat)


@pytest.mark.parametrize(("lon", "lat"), BEYOND)
def test_check_ins_one_step_beyond_the_ranges_are_out_of_range(lon, lat):
    for parsed in _parsed(lon, lat):
        assert (parsed.outcome, parsed.reason) == ("rejected", "coordinates_out_of_range")


@pytest.mark.parametrize(
    ("lon", "lat"), [(BEYOND_LON, BEYOND_LAT), (-BEYOND_LON, -BEYOND_LAT), (200, -100)]
)
def test_check_ins_beyond_both_ranges_are_out_of_range(lon, lat):
    for parsed in _parsed(lon, lat):
        assert (parsed.outcome, parsed.reason) == ("rejected", "coordinates_out_of_range")


@given(
    lon=st.floats(-200, 200, allow_nan=False) | st.sampled_from([180.0, -180.0, BEYOND_LON]),
    lat=st.floats(-100, 100, allow_nan=False) | st.sampled_from([90.0, -90.0, BEYOND_LAT]),
)
def test_the_readers_fast_path_judges_coordinates_as_the_schema_does(lon, lat):
    inside = -180 <= lon <= 180 and -90 <= lat <= 90
    fast, slow = _parsed(lon, lat)
    assert fast.outcome == slow.outcome == ("accepted" if inside else "rejected")


@given(
    lon=st.floats(-200, 200, allow_nan=False) | st.sampled_from([180.0, -180.0, BEYOND_LON]),
    lat=st.floats(-100, 100, allow_nan=False) | st.sampled_from([90.0, -90.0, BEYOND_LAT]),
)
def test_the_fast_path_itself_reads_every_plain_item_in_range(lon, lat):
    """The schema costs more than the rest of a batch: a plain item in range, the ends
    included, is read without it; one out of range is left to it (which explains)."""
    inside = -180 <= lon <= 180 and -90 <= lat <= 90
    read = ingest._plain(item(lon=lon, lat=lat))
    assert (read is not None) == inside
    if inside:
        assert (read["location"]["lon"], read["location"]["lat"]) == (lon, lat)


@pytest.mark.parametrize("system", ["wgs84", "gcj02"])
def test_the_fast_path_itself_reads_a_location_with_every_key_it_may_have(system):
    read = ingest._plain(item(accuracy_m=8, coord_system=system))
    assert read is not None and read["location"]["accuracy_m"] == 8


@pytest.mark.parametrize("number", [100_000, -100_000, 100_000.0])
def test_the_fast_path_itself_reads_whole_numbers_as_large_as_the_largest_accuracy(number):
    """Integers beyond it are left to the schema (a float cannot hold every integer); inside,
    as accuracies, they are read."""
    read = ingest._plain(item(accuracy_m=abs(number)))
    assert read is not None and read["location"]["accuracy_m"] == abs(number)
    assert ingest._plain(item(lon=int(number))) is None  # out of range: the schema explains


@pytest.mark.parametrize("length", [1, 64, 65])
def test_the_fast_path_itself_reads_client_ids_of_up_to_64_characters(length):
    read = ingest._plain(item(client_id="k" * length))
    assert (read is not None) == (length <= 64)


@pytest.mark.parametrize("accuracy", [-1, -0.5, 0, 100_000, 100_001])
def test_the_fast_path_itself_reads_accuracies_of_0_to_100_km(accuracy):
    """A negative accuracy is left to the schema, which refuses it."""
    read = ingest._plain(item(accuracy_m=accuracy))
    assert (read is not None) == (0 <= accuracy <= 100_000)
    if accuracy < 0:
        parsed = ingest.parse([item(accuracy_m=accuracy)])[0]
        assert (parsed.outcome, parsed.reason) == ("rejected", "invalid")


@pytest.mark.parametrize(
    "raw",
    [
        {"client_id": "a", "recorded_at": "yesterday", "location": {"lon": 200, "lat": 0}},
        {"client_id": "a", "recorded_at": T.isoformat(), "location": "here"},
        {"client_id": "a", "recorded_at": T.isoformat(), "location": [116.4, 39.9]},
        # The schema's message for these is a list, not one per coordinate.
        {"client_id": "a", "recorded_at": T.isoformat()},
        {"client_id": "a", "recorded_at": T.isoformat(), "location": None},
        # Not a number at all: invalid, not out of range.
        {"client_id": "a", "recorded_at": T.isoformat(), "location": {"lon": "东", "lat": 39.9}},
        {"client_id": "a", "recorded_at": T.isoformat(), "location": {"lon": None, "lat": 39.9}},
    ],
)
def test_an_item_refused_for_more_than_its_coordinates_range_is_invalid(raw):
    parsed = ingest.parse([raw])[0]
    assert (parsed.outcome, parsed.reason) == ("rejected", "invalid")


def test_a_fix_as_inaccurate_as_the_limit_is_not_flagged_and_a_worse_one_is():
    at = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)
    fixes = [
        ingest.Item(client_id=str(n), recorded_at=at + dt.timedelta(minutes=n), accuracy_m=a)
        for n, a in enumerate([100.0, 100.001])
    ]
    ingest._flag(fixes, [], poor_accuracy_m=100.0, max_speed=40.0)
    assert [bool(f.flags & FLAG_POOR_ACCURACY) for f in fixes] == [False, True]


def _fixes(*points, at=dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)):
    """Items a minute apart at (lon, lat) or (lon, lat, accuracy_m)."""
    return [
        ingest.Item(
            client_id=str(n),
            recorded_at=at + dt.timedelta(minutes=n),
            lon=p[0],
            lat=p[1],
            accuracy_m=p[2] if len(p) > 2 else 5.0,
        )
        for n, p in enumerate(points)
    ]


def _speed_flags(fixes):
    return [bool(f.flags & FLAG_IMPLAUSIBLE_SPEED) for f in fixes]


def test_a_speed_exactly_at_the_limit_is_plausible_and_one_step_above_is_not():
    a, b = (116.45, 39.91), (116.46, 39.91)
    speed = haversine_m(*a, *b) / 60.0  # the fixes are a minute apart
    fixes = _fixes(a, b)
    ingest._flag(fixes, [], poor_accuracy_m=100.0, max_speed=speed)
    assert _speed_flags(fixes) == [False, False]
    fixes = _fixes(a, b)
    ingest._flag(fixes, [], poor_accuracy_m=100.0, max_speed=math.nextafter(speed, 0))
    assert _speed_flags(fixes) == [False, True]


@pytest.mark.parametrize("apart_s", [0, 1])
def test_fixes_less_than_a_second_apart_are_judged_as_a_second_apart(apart_s):
    """60 m in one second is 60 m/s, beyond 40; fixes with the same time are a second apart
    (no division by zero, and no instant jump passes)."""
    a = (116.45, 39.91)
    b = (a[0] + 60 / 85_390.0, a[1])  # 60 m east
    for max_speed, flagged in ((40.0, True), (70.0, False)):
        fixes = _fixes(a, b)
        fixes[1].recorded_at = fixes[0].recorded_at + dt.timedelta(seconds=apart_s)
        ingest._flag(fixes, [], poor_accuracy_m=100.0, max_speed=max_speed)
        assert _speed_flags(fixes) == [False, flagged]


def test_the_fixes_after_a_jump_are_still_judged():
    """A jump is flagged and the next fixes are judged against the last plausible one: a poor
    fix after it is flagged poor, a second jump flagged too."""
    home, far = (116.45, 39.91), (116.60, 39.91)  # 13 km apart: 213 m/s at a minute
    fixes = _fixes(home, far, (*home, 500.0), far)
    ingest._flag(fixes, [], poor_accuracy_m=100.0, max_speed=40.0)
    assert _speed_flags(fixes) == [False, True, False, True]
    assert [bool(f.flags & FLAG_POOR_ACCURACY) for f in fixes] == [False, False, True, False]


# -- a check-in's times --------------------------------------------------------------------------


def _judged(at, *, started_at, ended_at=None, now=T, oldest=T - dt.timedelta(days=30)) -> str:
    checked = ingest.Item(client_id=str(uuid.uuid4()), recorded_at=at)
    patrol = SimpleNamespace(started_at=started_at, ended_at=ended_at)
    ingest._judge_times([checked], patrol, now, oldest)
    return checked.reason or checked.outcome


def test_a_check_in_may_be_ahead_of_the_server_by_the_clock_skew_and_no_more():
    started = T - dt.timedelta(hours=1)
    assert _judged(T + CLOCK_SKEW, started_at=started) == "accepted"
    assert _judged(T + CLOCK_SKEW + STEP, started_at=started) == "in_future"


def test_a_check_in_may_precede_the_patrols_start_by_the_clock_skew_and_no_more():
    started = T - dt.timedelta(hours=1)
    assert _judged(started - CLOCK_SKEW, started_at=started) == "accepted"
    assert _judged(started - CLOCK_SKEW - STEP, started_at=started) == "before_patrol_start"


def test_a_check_in_may_follow_the_patrols_end_by_the_clock_skew_and_no_more():
    started, ended = T - dt.timedelta(hours=2), T - dt.timedelta(hours=1)
    assert _judged(ended + CLOCK_SKEW, started_at=started, ended_at=ended) == "accepted"
    late = _judged(ended + CLOCK_SKEW + STEP, started_at=started, ended_at=ended)
    assert late == "after_patrol_end"


def test_a_check_in_as_old_as_the_retention_horizon_is_kept():
    oldest = T - dt.timedelta(days=30)
    started = oldest - dt.timedelta(hours=1)
    assert _judged(oldest, started_at=started, oldest=oldest) == "accepted"
    assert _judged(oldest - STEP, started_at=started, oldest=oldest) == "past_retention"
