"""Marshmallow fields shared by several modules.

Times a client sends. Every date-time the API accepts is a `BoundedDateTime`: an instant with a
UTC offset (a naive time is no instant), in an offset some place on Earth uses (-12:00 to
+14:00), inside the range that makes sense for its field, and handed to the service in UTC.
Dates are `BoundedDate`s. Without bounds, `0001-01-01T00:00:00+14:00` was stored as 1 BC and
`9999-12-31T23:59:59-14:00` as the year 10000; neither can be read back into Python, so every
list holding such a row failed for good.

A bound is a fixed moment, or a `timedelta` from the moment of parsing (from today, for dates):
`latest=CLOCK_SKEW` is "not after now plus five minutes". Each field says its own bounds; the
shared ones are below.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from marshmallow import fields

# Nothing this service holds (tips, patrols, tasks, audit) happened before this.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
# How far ahead of the server's clock a phone's clock may be.
CLOCK_SKEW = dt.timedelta(minutes=5)
# How far ahead a query period, or anything planned, may reach.
HORIZON = dt.timedelta(days=366)

_OFFSETS = (-dt.timedelta(hours=12), dt.timedelta(hours=14))

EARLIEST_DATE = EARLIEST.date()

Bound = dt.datetime | dt.timedelta
DateBound = dt.date | dt.timedelta


def _resolve(bound, now):
    """A bound as a fixed point: relative ones count from `now` (a datetime, or a date)."""
    return now + bound if isinstance(bound, dt.timedelta) else bound


def _describe(bound: Bound | DateBound, now_word: str) -> str:
    if not isinstance(bound, dt.timedelta):
        return bound.isoformat()
    if not bound:
        return now_word
    sign = "+" if bound > dt.timedelta(0) else "-"
    size = abs(bound)
    if size.days and not size.seconds:
        amount = f"{size.days} day{'s' if size.days != 1 else ''}"
    else:
        amount = f"{int(size.total_seconds() // 60)} minutes"
    return f"{now_word} {sign} {amount}"


def _with_range_description(kwargs: dict[str, Any], text: str) -> dict[str, Any]:
    metadata = dict(kwargs.pop("metadata", None) or {})
    described = metadata.get("description")
    metadata["description"] = f"{described}; {text}" if described else text
    return {**kwargs, "metadata": metadata}


class BoundedDateTime(fields.AwareDateTime):
    """An ISO 8601 date-time with a UTC offset, between `earliest` and `latest`; loaded in UTC.

    `default_timezone` (as marshmallow's AwareDateTime) makes naive times that zone's instead of
    refusing them: only for protocols that say so (Open311 reads them as UTC)."""

    default_error_messages: ClassVar[dict[str, str]] = {
        "offset": "The UTC offset must be between -12:00 and +14:00.",
        "range": "Must be between {earliest} and {latest}.",
    }

    def __init__(self, *, earliest: Bound = EARLIEST, latest: Bound, **kwargs: Any) -> None:
        self.earliest, self.latest = earliest, latest
        text = f"{_describe(earliest, 'now')} to {_describe(latest, 'now')}, with a UTC offset"
        super().__init__(**_with_range_description(kwargs, text))

    def _deserialize(self, value, attr, data, **kwargs) -> dt.datetime:
        return self.checked(super()._deserialize(value, attr, data, **kwargs))

    def checked(self, moment: dt.datetime) -> dt.datetime:
        """An aware `moment` in UTC, or a ValidationError when its offset or the moment is out
        of bounds (for callers that parse themselves). Comparing aware times never overflows;
        converting one of the year 1 or 9999 to UTC can."""
        if not _OFFSETS[0] <= moment.utcoffset() <= _OFFSETS[1]:
            raise self.make_error("offset")
        now = dt.datetime.now(dt.UTC)
        earliest, latest = _resolve(self.earliest, now), _resolve(self.latest, now)
        if not earliest <= moment <= latest:
            raise self.make_error(
                "range",
                earliest=earliest.isoformat(timespec="seconds"),
                latest=latest.isoformat(timespec="seconds"),
            )
        return moment.astimezone(dt.UTC)


class BoundedDate(fields.Date):
    """An ISO 8601 date between `earliest` and `latest` (a `timedelta` counts from today, UTC)."""

    default_error_messages: ClassVar[dict[str, str]] = {
        "range": "Must be between {earliest} and {latest}."
    }

    def __init__(self, *, earliest: DateBound = EARLIEST_DATE, latest: DateBound, **kwargs: Any):
        self.earliest, self.latest = earliest, latest
        text = f"{_describe(earliest, 'today')} to {_describe(latest, 'today')}"
        super().__init__(**_with_range_description(kwargs, text))

    def _deserialize(self, value, attr, data, **kwargs) -> dt.date:
        day = super()._deserialize(value, attr, data, **kwargs)
        today = dt.datetime.now(dt.UTC).date()
        earliest = (
            today + self.earliest if isinstance(self.earliest, dt.timedelta) else self.earliest
        )
        latest = today + self.latest if isinstance(self.latest, dt.timedelta) else self.latest
        if not earliest <= day <= latest:
            raise self.make_error("range", earliest=earliest, latest=latest)
        return day


class UnjudgedObject(fields.Dict):
    """A JSON object passed on as it is, for the service to judge (so that one bad item of a
    batch is rejected alone), and documented in OpenAPI as `schema`, what it should be."""

    def __init__(self, schema: type, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.documented_as = schema


def document_unjudged_objects(converter, field, ret: dict, **_kwargs) -> dict:
    """apispec attribute function: an `UnjudgedObject` is documented as its schema."""
    if not isinstance(field, UnjudgedObject):
        return {}
    ret.clear()  # not an open object: a reference to the schema of what it should be
    return converter.resolve_nested_schema(field.documented_as)
