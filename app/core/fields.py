"""Marshmallow fields shared by several modules: times, plain text, a bbox, and the one shape of a
point in a request body.

Points. Every request body that carries a point carries it as `location`, an object
`{lon, lat, coord_system}` (`LocationSchema`), plus `accuracy_m` when it is a device's fix
(`FixSchema`: tips, check-ins). `coord_system` says what the client's map SDK speaks (`wgs84`,
`gcj02` from AMap and Tencent, `bd09` from Baidu; default `wgs84`); the service receives the
point in WGS-84 as `{"lon": .., "lat": ..}` (and `accuracy_m`). Answers give points in the
system the client asks for with `?crs=`. Query strings keep flat `lon`, `lat`, `coord_system`,
as query strings must.

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

from marshmallow import Schema, ValidationError, fields, post_load, validate

from app.core.i18n import _
from geo.crs import CoordSystem, to_wgs84

COORD_SYSTEMS = [c.value for c in CoordSystem]

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


class PlainText(fields.String):
    """Text kept as the user wrote it (shown as text, never as markup), without surrounding
    blanks; blank text is missing text."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            raise ValidationError(_("Must not be blank."))
        return text


class BboxField(fields.Field):
    """`min lon,min lat,max lon,max lat` → a tuple of four floats, checked for order and range."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            west, south, east, north = (float(part) for part in str(value).split(","))
        except ValueError as exc:
            raise ValidationError(_("Four numbers: min lon,min lat,max lon,max lat.")) from exc
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise ValidationError(_("Not a bbox: west < east, south < north, within range."))
        return west, south, east, north


class LocationSchema(Schema):
    """A point: `lon`, `lat` in `coord_system`. Loads as `{"lon", "lat"}` in WGS-84."""

    lon = fields.Float(required=True, validate=validate.Range(-180, 180))
    lat = fields.Float(required=True, validate=validate.Range(-90, 90))
    coord_system = fields.String(
        load_default="wgs84",
        validate=validate.OneOf(COORD_SYSTEMS),
        metadata={
            "description": "the system of `lon`/`lat`: gcj02 from AMap or Tencent, bd09 from Baidu"
        },
    )

    @post_load
    def _in_wgs84(self, data, **_kwargs):
        lon, lat = to_wgs84(data["lon"], data["lat"], data["coord_system"])
        point = {key: value for key, value in data.items() if key not in ("lon", "lat")}
        point.pop("coord_system")
        return {"lon": lon, "lat": lat, **point}


class FixSchema(LocationSchema):
    """A device's position fix: a location and how sure the device was of it."""

    accuracy_m = fields.Float(
        load_default=None,
        validate=validate.Range(0, 100_000),
        metadata={"description": "the device's stated horizontal accuracy, in metres"},
    )
