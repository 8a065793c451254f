"""Checkpoint schedules: weekly time windows in a local time zone, as concrete UTC periods.

A window is `{days, start, end, expected_visits}`: it starts on each of `days` at `start` local
time and ends at `end`, on the next day when `end` is not after `start` (22:00-02:00 is a
night). Days name the day a window starts on. No Flask, no database: pure date arithmetic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Window:
    starts_at: dt.datetime  # UTC
    ends_at: dt.datetime  # UTC
    expected_visits: int


def _time(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


def windows(
    schedule: Mapping[str, Any], after: dt.datetime, until: dt.datetime
) -> Iterator[Window]:
    """Every window of `schedule` that ends in (after, until], in order of its end."""
    zone = ZoneInfo(schedule.get("timezone") or "Asia/Shanghai")
    first = after.astimezone(zone).date() - dt.timedelta(days=1)  # a night may end after it
    last = until.astimezone(zone).date()
    found = []
    day = first
    while day <= last:
        for spec in schedule.get("windows", []):
            if DAYS[day.weekday()] not in spec.get("days", DAYS):
                continue
            start, end = _time(spec["start"]), _time(spec["end"])
            starts = dt.datetime.combine(day, start, zone)
            ends = dt.datetime.combine(day + dt.timedelta(days=end <= start), end, zone)
            window = Window(
                starts.astimezone(dt.UTC), ends.astimezone(dt.UTC), spec.get("expected_visits", 1)
            )
            if after < window.ends_at <= until:
                found.append(window)
        day += dt.timedelta(days=1)
    yield from sorted(found, key=lambda w: (w.ends_at, w.starts_at))
