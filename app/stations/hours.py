"""Opening hours of stations: weekly spans, dated exceptions, and the open periods they give.

Rules (all times local to Beijing, Asia/Shanghai, UTC+8 all year round):

- Weekly hours are an object with keys among "mon".."sun"; each value is a list of at most 6
  spans ["HH:MM", "HH:MM"] (start, end). A missing day or an empty list means closed that day.
- "24:00" is allowed as an end only. A span whose end is at or before its start is overnight: it
  ends on the next day ("22:00"-"06:00"). ["00:00", "24:00"] is the whole day; a start equal to
  its end (["08:00", "08:00"]) is refused as ambiguous.
- Spans starting on the same day may touch but not overlap (an overnight span counts up to its
  end on the next day). Spans of different days may overlap; their union is what counts.
- Periods are half-open: ["08:00", "20:00"] is open at 08:00 and closed at 20:00.
- A dated exception either closes the station that whole local date ({"closed": true}: this also
  cuts at local midnight a span spilling in from the previous evening) or replaces that date's
  weekly spans ({"spans": [...]}: same span rules; a spill from the previous evening is kept).

This module is pure: no Flask, no database, only the standard library.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from zoneinfo import ZoneInfo

TIMEZONE = ZoneInfo("Asia/Shanghai")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SPANS_PER_DAY = 6
MAX_EXCEPTIONS = 366

# Asia/Shanghai has been UTC+8 without daylight saving since 1991; the arithmetic uses that fixed
# offset, so that dates before then (when the zone database has DST) follow the same rule.
_UTC_OFFSET = dt.timedelta(hours=8)
_DAY_MINUTES = 24 * 60
_ONE_DAY = dt.timedelta(days=1)
_TIME_RE = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EXCEPTION_KEYS = frozenset({"date", "closed", "spans"})

Interval = tuple[dt.datetime, dt.datetime]


class HoursError(ValueError):
    """Invalid opening hours; the message says what and where, e.g. "tue: span 2 overlaps span 1"
    or "exception 3 (2026-10-01): duplicate date (also exception 1)"."""


@dataclass(frozen=True, slots=True)
class _Span:
    """A span as minutes after local midnight of the day it starts; `end` > `start`, and beyond
    1440 for an overnight span (it then ends on the next day at `end` - 1440)."""

    start: int
    end: int

    @property
    def spill(self) -> int:
        """Minutes after the next day's midnight that the span still runs (0 if it ends today)."""
        return max(self.end - _DAY_MINUTES, 0)


# --- validation ---------------------------------------------------------------------------------


def _kind(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _parse_time(value: object, where: str, *, is_end: bool) -> int:
    """Minutes after midnight of "HH:MM" (hours may lack the leading zero: "7:05"); "24:00" only
    as an end."""
    what = "end" if is_end else "start"
    if not isinstance(value, str):
        raise HoursError(f'{where}: {what} must be a string "HH:MM", not {_kind(value)}')
    match = _TIME_RE.fullmatch(value)
    if match is None:
        raise HoursError(f'{where}: bad {what} time {value!r} (expected "HH:MM")')
    hour, minute = int(match[1]), int(match[2])
    if hour == 24 and minute == 0:
        if not is_end:
            raise HoursError(f'{where}: "24:00" is allowed as an end only, not as a start')
        return _DAY_MINUTES
    if hour > 23 or minute > 59:
        allowed = "00:00..23:59, or 24:00" if is_end else "00:00..23:59"
        raise HoursError(f"{where}: {what} time {value!r} out of range ({allowed})")
    return hour * 60 + minute


def _format_time(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_spans(value: object, where: str) -> list[_Span]:
    """One day's spans, checked and sorted by start (see the module rules)."""
    if not isinstance(value, list | tuple):
        raise HoursError(f"{where}: expected a list of spans, not {_kind(value)}")
    if len(value) > MAX_SPANS_PER_DAY:
        raise HoursError(f"{where}: {len(value)} spans, at most {MAX_SPANS_PER_DAY} are allowed")
    numbered: list[tuple[int, _Span]] = []
    for number, raw in enumerate(value, 1):
        at = f"{where}: span {number}"
        if not isinstance(raw, list | tuple) or len(raw) != 2:
            shape = f"{len(raw)} items" if isinstance(raw, list | tuple) else _kind(raw)
            raise HoursError(f'{at}: expected ["HH:MM", "HH:MM"], not {shape}')
        start = _parse_time(raw[0], at, is_end=False)
        end = _parse_time(raw[1], at, is_end=True)
        if end == start:
            raise HoursError(
                f'{at}: start equals end ("{raw[0]}"), which is ambiguous; '
                'use ["00:00", "24:00"] for the whole day'
            )
        if end < start:
            end += _DAY_MINUTES
        numbered.append((number, _Span(start, end)))
    numbered.sort(key=lambda item: (item[1].start, item[0]))
    for (first, earlier), (second, later) in pairwise(numbered):
        if later.start < earlier.end:
            low, high = sorted((first, second))
            raise HoursError(f"{where}: span {high} overlaps span {low}")
    return [span for _, span in numbered]


def _format_spans(spans: Sequence[_Span]) -> list[list[str]]:
    """The normalized form: zero-padded times; an end at midnight is written "24:00"."""
    return [
        [
            _format_time(span.start),
            "24:00" if span.end == _DAY_MINUTES else _format_time(span.end % _DAY_MINUTES),
        ]
        for span in spans
    ]


def _parse_date(value: object, where: str) -> dt.date:
    if not isinstance(value, str):
        raise HoursError(f'{where}: date must be a string "YYYY-MM-DD", not {_kind(value)}')
    if _DATE_RE.fullmatch(value) is None:
        raise HoursError(f'{where}: bad date {value!r} (expected "YYYY-MM-DD")')
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise HoursError(f"{where}: no such date {value!r}") from None


def validate_weekly(hours: object) -> dict[str, list[list[str]]]:
    """Check and normalize weekly hours: all 7 keys present in order (missing -> []), spans sorted
    by start, times as zero-padded "HH:MM" (an end at midnight as "24:00"). Raise HoursError on
    anything else: wrong types, unknown keys, bad time strings ("7:5", "25:00", "24:00" as a
    start), a start equal to its end, more than 6 spans a day, spans of one day overlapping."""
    if not isinstance(hours, Mapping):
        raise HoursError(f"opening hours must be an object with keys mon..sun, not {_kind(hours)}")
    for key in hours:
        if key not in WEEKDAYS:
            raise HoursError(f"unknown day {key!r} (expected one of {', '.join(WEEKDAYS)})")
    return {day: _format_spans(_parse_spans(hours.get(day, []), day)) for day in WEEKDAYS}


def validate_exceptions(exceptions: object) -> list[dict]:
    """Check and normalize dated exceptions, sorted by date: each is {"date": "YYYY-MM-DD",
    "closed": True} or {"date": ..., "spans": [...]} (spans normalized as in validate_weekly; an
    empty list closes the date but keeps the previous evening's spill). Raise HoursError
    otherwise: bad or duplicate dates, unknown keys, both or neither of "closed" and "spans",
    "closed" other than true, more than 366 exceptions."""
    if not isinstance(exceptions, list | tuple):
        raise HoursError(f"exceptions must be a list, not {_kind(exceptions)}")
    if len(exceptions) > MAX_EXCEPTIONS:
        raise HoursError(f"{len(exceptions)} exceptions, at most {MAX_EXCEPTIONS} are allowed")
    seen: dict[dt.date, int] = {}
    normalized: list[tuple[dt.date, dict]] = []
    for number, item in enumerate(exceptions, 1):
        where = f"exception {number}"
        if not isinstance(item, Mapping):
            raise HoursError(f"{where}: expected an object, not {_kind(item)}")
        unknown = sorted(repr(key) for key in item if key not in _EXCEPTION_KEYS)
        if unknown:
            raise HoursError(f"{where}: unknown key {', '.join(unknown)}")
        if "date" not in item:
            raise HoursError(f"{where}: date is missing")
        day = _parse_date(item["date"], where)
        where = f"exception {number} ({day.isoformat()})"
        if day in seen:
            raise HoursError(f"{where}: duplicate date (also exception {seen[day]})")
        seen[day] = number
        if ("closed" in item) == ("spans" in item):
            raise HoursError(f'{where}: give exactly one of "closed": true or "spans"')
        if "closed" in item:
            if item["closed"] is not True:
                raise HoursError(f'{where}: "closed" must be true (for special hours use "spans")')
            normalized.append((day, {"date": day.isoformat(), "closed": True}))
        else:
            spans = _format_spans(_parse_spans(item["spans"], where))
            normalized.append((day, {"date": day.isoformat(), "spans": spans}))
    normalized.sort(key=lambda pair: pair[0])
    return [item for _, item in normalized]


# --- evaluation ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Schedule:
    """Validated hours and exceptions, parsed once for evaluation."""

    weekly: tuple[tuple[_Span, ...], ...]  # indexed by date.weekday()
    closed: frozenset[dt.date]
    special: Mapping[dt.date, tuple[_Span, ...]]

    @classmethod
    def of(
        cls, hours: Mapping[str, object], exceptions: Sequence[Mapping[str, object]]
    ) -> _Schedule:
        weekly = tuple(tuple(_parse_spans(hours.get(day) or [], day)) for day in WEEKDAYS)
        closed: set[dt.date] = set()
        special: dict[dt.date, tuple[_Span, ...]] = {}
        for number, item in enumerate(exceptions, 1):
            day = _parse_date(item["date"], f"exception {number}")
            if item.get("closed") is True:
                closed.add(day)
            else:
                special[day] = tuple(_parse_spans(item["spans"], f"exception {number}"))
        return cls(weekly, frozenset(closed), special)

    def spans_starting(self, day: dt.date) -> tuple[_Span, ...]:
        """The spans that start on this local date, exceptions applied."""
        if day in self.closed:
            return ()
        if day in self.special:
            return self.special[day]
        return self.weekly[day.weekday()]


def _utc_midnight(day: dt.date) -> dt.datetime:
    """Local midnight starting this date, as an aware UTC datetime."""
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) - _UTC_OFFSET


def _merge(intervals: list[Interval]) -> list[Interval]:
    """Sorted, with intervals that touch or overlap joined."""
    merged: list[Interval] = []
    for begin, end in sorted(intervals):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged


def open_intervals(
    hours: Mapping[str, object],
    exceptions: Sequence[Mapping[str, object]],
    start: dt.date,
    days: int,
) -> list[Interval]:
    """The open periods, as UTC-aware half-open (start, end) pairs, sorted and merged where they
    touch or overlap, of the spans that start on the local dates start .. start + days - 1, with
    exceptions applied. An overnight span starting on the last date runs into the next day; a span
    spilling in from the evening before `start` is included from local midnight of `start` (cut
    there), so that the periods are complete from that midnight on. No dates (days == 0) give no
    periods. Inputs are assumed validated (validate_weekly, validate_exceptions)."""
    if days < 0:
        raise ValueError(f"days must not be negative, not {days}")
    if days == 0:
        return []
    schedule = _Schedule.of(hours, exceptions)
    window_start = _utc_midnight(start)
    intervals: list[Interval] = []
    for offset in range(-1, days):
        day = start + dt.timedelta(days=offset)
        midnight = _utc_midnight(day)
        for span in schedule.spans_starting(day):
            begin = max(midnight + dt.timedelta(minutes=span.start), window_start)
            end = midnight + dt.timedelta(minutes=span.end)
            if span.spill and day + _ONE_DAY in schedule.closed:
                end = midnight + _ONE_DAY
            if begin < end:
                intervals.append((begin, end))
    return _merge(intervals)


def is_open(
    hours: Mapping[str, object], exceptions: Sequence[Mapping[str, object]], at: dt.datetime
) -> bool:
    """Whether the station is open at the aware datetime `at` (any timezone): a span of the local
    date of `at` contains it, or the previous date's overnight span still runs (unless the date is
    closed by an exception). Half-open: open at 08:00 for ["08:00", "20:00"], closed at 20:00.
    Inputs are assumed validated; a naive `at` raises ValueError."""
    if at.utcoffset() is None:
        raise ValueError("`at` must be timezone-aware")
    local = at.astimezone(dt.UTC).replace(tzinfo=None) + _UTC_OFFSET
    day = local.date()
    since_midnight = local - dt.datetime.combine(day, dt.time())
    schedule = _Schedule.of(hours, exceptions)
    for span in schedule.spans_starting(day):
        if dt.timedelta(minutes=span.start) <= since_midnight < dt.timedelta(minutes=span.end):
            return True
    if day in schedule.closed:
        return False
    return any(
        since_midnight < dt.timedelta(minutes=span.spill)
        for span in schedule.spans_starting(day - _ONE_DAY)
    )
