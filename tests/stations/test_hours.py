"""Opening hours: weekly spans, overnight spans, exceptions, UTC periods and validation."""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.stations.hours import (
    TIMEZONE,
    WEEKDAYS,
    HoursError,
    is_open,
    open_intervals,
    validate_exceptions,
    validate_weekly,
)

UTC = dt.UTC
# A week of October 2026: Friday the 2nd .. Monday the 5th.
FRI, SAT, SUN, MON = (dt.date(2026, 10, day) for day in (2, 3, 4, 5))
ALL_DAY = {day: [["00:00", "24:00"]] for day in WEEKDAYS}


def bj(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """A Beijing wall-clock time."""
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=TIMEZONE)


def utc(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def weekly(**days: list[list[str]]) -> dict[str, list[list[str]]]:
    return validate_weekly(days)


# --- is_open / open_intervals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "minute", "second", "expected"),
    [
        (7, 59, 59, False),
        (8, 0, 0, True),
        (12, 0, 0, True),
        (19, 59, 59, True),
        (20, 0, 0, False),
        (23, 0, 0, False),
        (0, 0, 0, False),
    ],
)
def test_daytime_span_is_open_from_its_start_until_before_its_end(hour, minute, second, expected):
    hours = weekly(mon=[["08:00", "20:00"]])
    assert is_open(hours, [], bj(MON, hour, minute, second)) is expected


def test_daytime_span_gives_one_interval_on_its_day_only():
    hours = weekly(mon=[["08:00", "20:00"]])
    assert open_intervals(hours, [], MON, 1) == [(bj(MON, 8), bj(MON, 20))]
    assert open_intervals(hours, [], SUN, 1) == []
    assert open_intervals(hours, [], MON + dt.timedelta(days=1), 6) == []


def test_overnight_span_is_open_after_midnight_on_the_next_day():
    hours = weekly(fri=[["22:00", "06:00"]])
    assert not is_open(hours, [], bj(FRI, 21, 59))
    assert is_open(hours, [], bj(FRI, 22, 0))
    assert is_open(hours, [], bj(SAT, 0, 0))
    assert is_open(hours, [], bj(SAT, 5, 59))
    assert is_open(hours, [], bj(SAT, 5, 59, 59))
    assert not is_open(hours, [], bj(SAT, 6, 0))
    assert not is_open(hours, [], bj(SAT, 22, 0))
    assert open_intervals(hours, [], FRI, 1) == [(bj(FRI, 22), bj(SAT, 6))]


def test_overnight_span_runs_across_the_week_boundary_from_sunday_into_monday():
    hours = weekly(sun=[["22:00", "06:00"]])
    assert is_open(hours, [], bj(SUN, 23, 30))
    assert is_open(hours, [], bj(MON, 5, 59))
    assert not is_open(hours, [], bj(MON, 6, 0))
    assert open_intervals(hours, [], SUN, 1) == [(bj(SUN, 22), bj(MON, 6))]


def test_spill_from_the_day_before_the_window_is_cut_at_its_first_midnight():
    hours = weekly(sun=[["22:00", "06:00"]])
    assert open_intervals(hours, [], MON, 1) == [(bj(MON, 0), bj(MON, 6))]


def test_24_hour_station_is_open_at_every_hour_of_the_week():
    for offset in range(7):
        day = MON + dt.timedelta(days=offset)
        for hour in range(24):
            assert is_open(ALL_DAY, [], bj(day, hour)), (day, hour)
            assert is_open(ALL_DAY, [], bj(day, hour, 59, 59)), (day, hour)


def test_24_hour_station_intervals_merge_into_one_continuous_period_across_days():
    assert open_intervals(ALL_DAY, [], MON, 7) == [(bj(MON, 0), bj(MON + dt.timedelta(days=7), 0))]
    assert open_intervals(ALL_DAY, [], FRI, 16) == [
        (bj(FRI, 0), bj(FRI + dt.timedelta(days=16), 0))
    ]


def test_touching_spans_and_overnight_spills_merge():
    hours = weekly(
        fri=[["08:00", "12:00"], ["12:00", "18:00"], ["22:00", "02:00"]],
        sat=[["01:00", "04:00"]],
    )
    assert open_intervals(hours, [], FRI, 2) == [
        (bj(FRI, 8), bj(FRI, 18)),
        (bj(FRI, 22), bj(SAT, 4)),
    ]


def test_no_days_give_no_intervals_and_negative_days_are_refused():
    assert open_intervals(ALL_DAY, [], MON, 0) == []
    with pytest.raises(ValueError, match="days"):
        open_intervals(ALL_DAY, [], MON, -1)


def test_exception_closed_day_closes_the_whole_date():
    hours = weekly(sat=[["08:00", "20:00"]], sun=[["08:00", "20:00"]])
    closed = validate_exceptions([{"date": "2026-10-03", "closed": True}])
    assert not is_open(hours, closed, bj(SAT, 8))
    assert not is_open(hours, closed, bj(SAT, 12))
    assert is_open(hours, closed, bj(SUN, 12))
    assert open_intervals(hours, closed, SAT, 2) == [(bj(SUN, 8), bj(SUN, 20))]


def test_exception_closed_day_cuts_the_previous_evening_spill_at_midnight():
    hours = weekly(fri=[["22:00", "06:00"]], sat=[["08:00", "20:00"]])
    closed = validate_exceptions([{"date": "2026-10-03", "closed": True}])
    assert is_open(hours, closed, bj(FRI, 23, 59))
    assert not is_open(hours, closed, bj(SAT, 0, 0))
    assert not is_open(hours, closed, bj(SAT, 5, 0))
    assert not is_open(hours, closed, bj(SAT, 10, 0))
    assert open_intervals(hours, closed, FRI, 2) == [(bj(FRI, 22), bj(SAT, 0))]


def test_exception_closed_day_leaves_its_own_evening_spill_into_the_next_day_out():
    hours = weekly(sat=[["22:00", "06:00"]])
    closed = validate_exceptions([{"date": "2026-10-03", "closed": True}])
    assert not is_open(hours, closed, bj(SUN, 1))
    assert open_intervals(hours, closed, FRI, 3) == []


def test_exception_spans_replace_the_weekly_spans_of_that_date():
    hours = weekly(sat=[["08:00", "20:00"]], sun=[["08:00", "20:00"]])
    special = validate_exceptions([{"date": "2026-10-03", "spans": [["10:00", "14:00"]]}])
    assert not is_open(hours, special, bj(SAT, 9, 0))
    assert is_open(hours, special, bj(SAT, 10, 0))
    assert not is_open(hours, special, bj(SAT, 14, 0))
    assert not is_open(hours, special, bj(SAT, 19, 0))
    assert is_open(hours, special, bj(SUN, 19, 0))
    assert open_intervals(hours, special, SAT, 2) == [
        (bj(SAT, 10), bj(SAT, 14)),
        (bj(SUN, 8), bj(SUN, 20)),
    ]


def test_exception_spans_keep_the_previous_evening_spill():
    hours = weekly(fri=[["22:00", "06:00"]], sat=[["08:00", "20:00"]])
    special = validate_exceptions([{"date": "2026-10-03", "spans": [["10:00", "14:00"]]}])
    assert is_open(hours, special, bj(SAT, 5, 59))
    assert not is_open(hours, special, bj(SAT, 6, 0))
    assert open_intervals(hours, special, FRI, 2) == [
        (bj(FRI, 22), bj(SAT, 6)),
        (bj(SAT, 10), bj(SAT, 14)),
    ]
    # An empty list of spans closes the date itself but still keeps the spill.
    empty = validate_exceptions([{"date": "2026-10-03", "spans": []}])
    assert is_open(hours, empty, bj(SAT, 5, 0))
    assert not is_open(hours, empty, bj(SAT, 10, 0))
    assert open_intervals(hours, empty, FRI, 2) == [(bj(FRI, 22), bj(SAT, 6))]


def test_exception_spans_may_open_overnight_on_a_closed_weekday():
    hours = weekly(mon=[["08:00", "20:00"]])
    special = validate_exceptions([{"date": "2026-10-04", "spans": [["20:00", "02:00"]]}])
    assert is_open(hours, special, bj(MON, 1, 59))
    assert not is_open(hours, special, bj(MON, 2, 0))
    assert open_intervals(hours, special, SUN, 2) == [
        (bj(SUN, 20), bj(MON, 2)),
        (bj(MON, 8), bj(MON, 20)),
    ]


def test_beijing_times_are_converted_to_utc():
    hours = weekly(mon=[["08:00", "20:00"]])
    # 08:00 in Beijing is 00:00 UTC; 20:00 is 12:00 UTC.
    assert open_intervals(hours, [], MON, 1) == [(utc(MON, 0), utc(MON, 12))]
    for start, end in open_intervals(hours, [], MON, 1):
        assert start.tzinfo is UTC
        assert end.tzinfo is UTC
    assert not is_open(hours, [], utc(MON, 0) - dt.timedelta(microseconds=1))
    assert is_open(hours, [], utc(MON, 0))
    assert is_open(hours, [], utc(MON, 11, 59))
    assert not is_open(hours, [], utc(MON, 12))
    # Any timezone: 00:30 UTC on Monday is 20:30 on Sunday in New York (EDT).
    new_york = utc(MON, 0, 30).astimezone(ZoneInfo("America/New_York"))
    assert new_york.day == SUN.day
    assert is_open(hours, [], new_york)


def test_utc_midnight_belongs_to_the_beijing_morning():
    # A Sunday-evening span in UTC terms is the Monday morning in Beijing.
    hours = weekly(mon=[["00:00", "06:00"]])
    assert is_open(hours, [], utc(SUN, 16))  # 00:00 Monday in Beijing
    assert not is_open(hours, [], utc(SUN, 15, 59))
    assert open_intervals(hours, [], MON, 1) == [(utc(SUN, 16), utc(SUN, 22))]


def test_is_open_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(ALL_DAY, [], dt.datetime(2026, 10, 5, 12, 0))


# --- validation ---------------------------------------------------------------------------------


def test_validate_weekly_normalizes():
    assert validate_weekly(
        {
            "mon": [["12:00", "14:00"], ["7:05", "9:30"]],
            "sat": [["22:00", "00:00"], ["08:00", "12:00"]],
            "sun": [],
        }
    ) == {
        "mon": [["07:05", "09:30"], ["12:00", "14:00"]],
        "tue": [],
        "wed": [],
        "thu": [],
        "fri": [],
        "sat": [["08:00", "12:00"], ["22:00", "24:00"]],
        "sun": [],
    }


def test_validate_weekly_accepts_touching_spans_and_the_whole_day():
    hours = {
        "mon": [["08:00", "12:00"], ["12:00", "18:00"], ["18:00", "08:00"]],
        "tue": [["00:00", "24:00"]],
    }
    assert validate_weekly(hours)["mon"] == hours["mon"]
    assert validate_weekly(hours)["tue"] == [["00:00", "24:00"]]


def test_validate_exceptions_normalizes_and_sorts_by_date():
    assert validate_exceptions(
        [
            {"date": "2026-10-07", "spans": [["14:00", "18:00"], ["9:00", "12:00"]]},
            {"date": "2026-10-01", "closed": True},
        ]
    ) == [
        {"date": "2026-10-01", "closed": True},
        {"date": "2026-10-07", "spans": [["09:00", "12:00"], ["14:00", "18:00"]]},
    ]
    assert validate_exceptions([]) == []


SEVEN_SPANS = [[f"{hour:02d}:00", f"{hour:02d}:30"] for hour in range(7)]


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        pytest.param([], "opening hours must be an object", id="not-an-object"),
        pytest.param(
            None, "opening hours must be an object with keys mon..sun, not null", id="null"
        ),
        pytest.param({"Mon": []}, "unknown day 'Mon'", id="unknown-day"),
        pytest.param({"monday": []}, "unknown day 'monday'", id="long-day-name"),
        pytest.param({1: []}, "unknown day 1", id="non-string-key"),
        pytest.param({"mon": None}, "mon: expected a list of spans, not null", id="day-null"),
        pytest.param({"mon": "08:00-20:00"}, "mon: expected a list of spans, not string", id="str"),
        pytest.param({"mon": [["08:00"]]}, 'mon: span 1: expected ["HH:MM", "HH:MM"], not 1 items'),
        pytest.param(
            {"mon": [["08:00", "12:00", "13:00"]]}, "mon: span 1: expected", id="three-items"
        ),
        pytest.param({"mon": ["08:00-20:00"]}, "mon: span 1: expected", id="span-as-string"),
        pytest.param({"mon": [[8, "20:00"]]}, 'mon: span 1: start must be a string "HH:MM"'),
        pytest.param(
            {"mon": [["08:00", None]]}, "mon: span 1: end must be a string", id="end-null"
        ),
        pytest.param({"tue": [["7:5", "20:00"]]}, "tue: span 1: bad start time '7:5'", id="7:5"),
        pytest.param({"tue": [["0800", "20:00"]]}, "bad start time '0800'", id="no-colon"),
        pytest.param({"tue": [["08:00 ", "20:00"]]}, "bad start time '08:00 '", id="space"),
        pytest.param({"tue": [["08:00\n", "20:00"]]}, "bad start time", id="newline"),
        pytest.param({"tue": [["１８:００", "20:00"]]}, "bad start time", id="fullwidth"),
        pytest.param({"tue": [["008:00", "20:00"]]}, "bad start time", id="three-digit-hour"),
        pytest.param({"tue": [["08:00", "25:00"]]}, "tue: span 1: end time '25:00' out of range"),
        pytest.param({"tue": [["08:60", "20:00"]]}, "start time '08:60' out of range", id="08:60"),
        pytest.param({"tue": [["08:00", "24:30"]]}, "end time '24:30' out of range", id="24:30"),
        pytest.param({"wed": [["24:00", "06:00"]]}, '"24:00" is allowed as an end only'),
        pytest.param({"wed": [["08:00", "08:00"]]}, "wed: span 1: start equals end", id="zero"),
        pytest.param({"wed": [["00:00", "00:00"]]}, 'use ["00:00", "24:00"]', id="zero-midnight"),
        pytest.param({"thu": SEVEN_SPANS}, "thu: 7 spans, at most 6", id="seven-spans"),
        pytest.param(
            {"tue": [["08:00", "12:00"], ["11:00", "13:00"]]},
            "tue: span 2 overlaps span 1",
            id="overlap",
        ),
        pytest.param(
            {"tue": [["11:00", "13:00"], ["08:00", "12:00"]]},
            "tue: span 2 overlaps span 1",
            id="overlap-unsorted",
        ),
        pytest.param(
            {"fri": [["08:00", "09:00"], ["10:00", "12:00"], ["10:00", "11:00"]]},
            "fri: span 3 overlaps span 2",
            id="same-start",
        ),
        pytest.param(
            {"sat": [["22:00", "02:00"], ["23:00", "23:30"]]},
            "sat: span 2 overlaps span 1",
            id="inside-overnight",
        ),
        pytest.param(
            {"sun": [["06:00", "05:00"], ["20:00", "22:00"]]},
            "sun: span 2 overlaps span 1",
            id="long-overnight",
        ),
    ],
)
def test_validate_weekly_refuses_bad_hours_with_a_useful_message(hours, message):
    with pytest.raises(HoursError) as excinfo:
        validate_weekly(hours)
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    ("exceptions", "message"),
    [
        pytest.param({}, "exceptions must be a list, not object", id="not-a-list"),
        pytest.param(["2026-10-01"], "exception 1: expected an object, not string", id="str"),
        pytest.param([{"closed": True}], "exception 1: date is missing", id="no-date"),
        pytest.param(
            [{"date": "2026-10-01"}],
            'exception 1 (2026-10-01): give exactly one of "closed": true or "spans"',
            id="neither",
        ),
        pytest.param(
            [{"date": "2026-10-01", "closed": True, "spans": []}],
            'give exactly one of "closed": true or "spans"',
            id="both",
        ),
        pytest.param(
            [{"date": "2026-10-01", "closed": False}], '"closed" must be true', id="closed-false"
        ),
        pytest.param([{"date": "2026-10-01", "closed": 1}], '"closed" must be true', id="closed-1"),
        pytest.param(
            [{"date": "2026-10-01", "closed": True, "note": "holiday"}],
            "exception 1: unknown key 'note'",
            id="unknown-key",
        ),
        pytest.param([{"date": 20261001, "closed": True}], "date must be a string", id="int-date"),
        pytest.param([{"date": "2026-1-5", "closed": True}], "bad date '2026-1-5'", id="unpadded"),
        pytest.param([{"date": "20261001", "closed": True}], "bad date '20261001'", id="basic"),
        pytest.param(
            [{"date": "2026-10-01T00:00", "closed": True}], "bad date", id="datetime-string"
        ),
        pytest.param(
            [{"date": "2026-02-30", "closed": True}], "no such date '2026-02-30'", id="feb-30"
        ),
        pytest.param(
            [{"date": "2026-10-01", "closed": True}, {"date": "2026-10-01", "spans": []}],
            "exception 2 (2026-10-01): duplicate date (also exception 1)",
            id="duplicate",
        ),
        pytest.param(
            [{"date": "2026-10-01", "spans": None}],
            "exception 1 (2026-10-01): expected a list of spans, not null",
            id="spans-null",
        ),
        pytest.param(
            [{"date": "2026-10-01", "spans": [["10:00", "09:00"], ["08:00", "12:00"]]}],
            "exception 1 (2026-10-01): span 2 overlaps span 1",
            id="spans-overlap",
        ),
        pytest.param(
            [{"date": "2026-10-01", "spans": [["24:00", "09:00"]]}],
            "exception 1 (2026-10-01): span 1:",
            id="spans-bad-time",
        ),
        pytest.param(
            [
                {"date": (dt.date(2026, 1, 1) + dt.timedelta(days=n)).isoformat(), "closed": True}
                for n in range(367)
            ],
            "367 exceptions, at most 366 are allowed",
            id="too-many",
        ),
    ],
)
def test_validate_exceptions_refuses_bad_exceptions_with_a_useful_message(exceptions, message):
    with pytest.raises(HoursError) as excinfo:
        validate_exceptions(exceptions)
    assert message in str(excinfo.value)


def test_validate_exceptions_accepts_a_whole_leap_year():
    exceptions = [
        {"date": (dt.date(2028, 1, 1) + dt.timedelta(days=n)).isoformat(), "closed": True}
        for n in range(366)
    ]
    assert len(validate_exceptions(exceptions)) == 366


def test_hours_error_is_a_value_error():
    assert issubclass(HoursError, ValueError)


# --- properties ---------------------------------------------------------------------------------


def _clock(minutes: int) -> str:
    return "24:00" if minutes == 24 * 60 else f"{minutes // 60:02d}:{minutes % 60:02d}"


# Minutes of the day, often on a few round times so that spans touch.
minutes_of_day = st.one_of(st.integers(0, 24 * 60), st.sampled_from([0, 360, 720, 1080, 24 * 60]))


@st.composite
def day_spans(draw: st.DrawFn) -> list[list[str]]:
    """Up to 6 valid spans of one day (possibly touching), in any order, the last possibly
    overnight."""
    count = draw(st.integers(0, 6))
    points = sorted(draw(st.lists(minutes_of_day, min_size=2 * count, max_size=2 * count)))
    spans = [[points[i], points[i + 1]] for i in range(0, len(points), 2)]
    spans = [[start, end] for start, end in spans if start < end]
    if spans and spans[-1][0] > 0 and draw(st.booleans()):
        spans[-1][1] = draw(st.integers(0, spans[-1][0] - 1))
    return [[_clock(start), _clock(end)] for start, end in draw(st.permutations(spans))]


weekly_hours = st.dictionaries(st.sampled_from(WEEKDAYS), day_spans())

exception_lists = st.lists(
    st.tuples(
        st.dates(dt.date(2026, 9, 30), dt.date(2026, 10, 9)),
        st.one_of(st.just(None), day_spans()),
    ),
    max_size=8,
    unique_by=lambda item: item[0],
).map(
    lambda items: [
        {"date": day.isoformat(), "closed": True}
        if spans is None
        else {"date": day.isoformat(), "spans": spans}
        for day, spans in items
    ]
)

ZONES = [UTC, TIMEZONE, ZoneInfo("America/New_York"), dt.timezone(dt.timedelta(hours=-3.5))]


@st.composite
def instants(draw: st.DrawFn) -> dt.datetime:
    """Instants near the exception dates, often exactly on a minute (where spans begin and end),
    in various timezones."""
    day = draw(st.dates(dt.date(2026, 9, 30), dt.date(2026, 10, 9)))
    minute = draw(st.integers(0, 24 * 60 - 1))
    extra = draw(st.one_of(st.just(0), st.integers(0, 60_000_000 - 1)))
    local = bj(day, 0) + dt.timedelta(minutes=minute, microseconds=extra)
    return local.astimezone(draw(st.sampled_from(ZONES)))


@settings(max_examples=300)
@given(
    raw_hours=weekly_hours,
    raw_exceptions=exception_lists,
    at=instants(),
    before=st.integers(0, 3),
    after=st.integers(0, 3),
)
def test_is_open_agrees_with_membership_in_open_intervals(
    raw_hours, raw_exceptions, at, before, after
):
    hours = validate_weekly(raw_hours)
    exceptions = validate_exceptions(raw_exceptions)
    local_day = at.astimezone(TIMEZONE).date()
    start = local_day - dt.timedelta(days=before)
    intervals = open_intervals(hours, exceptions, start, before + 1 + after)

    assert is_open(hours, exceptions, at) == any(begin <= at < end for begin, end in intervals)
    # Sorted, non-empty, merged (not even touching), UTC, starting no earlier than the window.
    for begin, end in intervals:
        assert begin.tzinfo is UTC
        assert begin < end
    for (_, end), (begin, _) in pairwise(intervals):
        assert end < begin
    if intervals:
        assert intervals[0][0] >= bj(start, 0)


@given(raw_hours=weekly_hours, raw_exceptions=exception_lists)
def test_validation_is_idempotent(raw_hours, raw_exceptions):
    hours = validate_weekly(raw_hours)
    assert validate_weekly(hours) == hours
    exceptions = validate_exceptions(raw_exceptions)
    assert validate_exceptions(exceptions) == exceptions
