"""The shared time fields: offsets, naive times and bounds, for every field that uses them."""

from __future__ import annotations

import datetime as dt

import pytest
from marshmallow import ValidationError

from app.core.fields import CLOCK_SKEW, HORIZON, BoundedDate, BoundedDateTime


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def load(field, value):
    return field.deserialize(value)


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+14:00",  # 1 BC in UTC: Python cannot even hold it
        "9999-12-31T23:59:59-14:00",  # the year 10000 in UTC
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1999-12-31T23:59:59Z",
    ],
)
def test_times_outside_the_bounds_are_refused(value):
    with pytest.raises(ValidationError, match="between"):
        load(BoundedDateTime(latest=HORIZON), value)


def test_a_naive_time_is_refused_unless_the_field_names_a_zone():
    naive = (now() - dt.timedelta(minutes=1)).replace(tzinfo=None, microsecond=0)
    with pytest.raises(ValidationError, match="aware"):
        load(BoundedDateTime(latest=HORIZON), naive.isoformat())
    as_utc = BoundedDateTime(latest=HORIZON, default_timezone=dt.UTC)  # Open311's rule
    assert load(as_utc, naive.isoformat()) == naive.replace(tzinfo=dt.UTC)


def test_offsets_no_place_uses_are_refused_and_others_come_back_in_utc():
    moment = now() - dt.timedelta(hours=1)
    field = BoundedDateTime(latest=CLOCK_SKEW)
    kiribati = moment.astimezone(dt.timezone(dt.timedelta(hours=14)))
    assert load(field, kiribati.isoformat()) == moment
    assert load(field, kiribati.isoformat()).tzinfo == dt.UTC
    for hours in (-14, 15):
        shifted = moment.astimezone(dt.timezone(dt.timedelta(hours=hours)))
        with pytest.raises(ValidationError, match="offset"):
            load(field, shifted.isoformat())


def test_relative_bounds_count_from_now():
    field = BoundedDateTime(earliest=-dt.timedelta(days=1), latest=CLOCK_SKEW)
    assert load(field, (now() + dt.timedelta(minutes=4)).isoformat())
    with pytest.raises(ValidationError):
        load(field, (now() + dt.timedelta(minutes=6)).isoformat())
    with pytest.raises(ValidationError):
        load(field, (now() - dt.timedelta(days=1, minutes=1)).isoformat())


def test_dates_are_bounded_too():
    field = BoundedDate(latest=HORIZON)
    assert load(field, "2026-11-30") == dt.date(2026, 11, 30)
    for value in ("0001-01-01", "9999-12-31", "1999-12-31"):
        with pytest.raises(ValidationError, match="Must be between"):
            load(field, value)


def test_the_bounds_are_in_the_description():
    field = BoundedDateTime(latest=CLOCK_SKEW, metadata={"description": "when it happened"})
    assert field.metadata["description"] == (
        "when it happened; 2000-01-01T00:00:00+00:00 to now + 5 minutes, with a UTC offset"
    )
