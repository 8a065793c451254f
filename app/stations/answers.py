"""The answers of the public map (`GET /stations?bbox=`) and the nearby search, the stations' hot
lists: rows of `service.listing_columns()` written by orjson (app/core/fastjson.py), never a
Station object, a shapely point or a marshmallow dump per row. StationSchema stays the contract
(tests/stations/test_fast_answers.py compares the two)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy import Select, literal_column, select
from sqlalchemy.orm import Session

from app.core.fastjson import raw
from geo.crs import from_wgs84

_JSON_TEXT = ("opening_hours", "hours_exceptions")


@cache
def _fields() -> tuple[str, ...]:
    from app.stations.schemas import StationSchema

    return tuple(StationSchema().fields)


def item(row: Mapping[str, Any], crs: str) -> dict[str, Any]:
    """A listing row as StationSchema dumps it, in its order and with its fields only (a column
    the query adds for itself, such as a page's total, stays out), its position in `crs` (7
    decimals, about 1 cm) and `distance_m` (0.1 m) when the row has one."""
    values = {name: row.get(name) for name in _fields()}
    lon, lat = from_wgs84(values["lon"], values["lat"], crs)
    values["lon"], values["lat"] = round(lon, 7), round(lat, 7)
    for name in _JSON_TEXT:
        if values[name] is not None:
            values[name] = raw(values[name])
    if values["distance_m"] is not None:
        values["distance_m"] = round(values["distance_m"], 1)
    return values


def pop_position(properties: dict[str, Any]) -> list[float]:
    """A listed station's [lon, lat], taken out of its properties (for
    app/core/geojson.point_collection: the position is the geometry)."""
    return [properties.pop("lon"), properties.pop("lat")]


# -- the map page written whole by PostgreSQL ----------------------------------------------------

# A position rounded as Python's round(x, 7) does: from the shortest text of the double (what
# Python's repr shows), not from the 15 digits a float8 -> numeric cast keeps; back to float8 so
# that it is written without trailing zeros. (A stored coordinate written with exactly 8
# decimals ending in 5 is a decimal tie: here it rounds away from zero, in Python to the side
# the binary double lies on; 1e-7 degree, 1 cm, at most.)
_COORDINATE = "round(p.{0}::text::numeric, 7)::float8"
# A timestamptz as Python's isoformat() writes it (as marshmallow dumps it): microseconds only
# when there are some, and always six digits of them; the offset of the session's time zone.
_ISO_DATETIME = (
    "to_char(p.{0}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    " || CASE WHEN mod(date_part('microseconds', p.{0})::int, 1000000) = 0 THEN ''"
    " ELSE to_char(p.{0}, '.US') END || to_char(p.{0}, 'TZH:TZM')"
)
_PROPERTY_SQL = {
    "opening_hours": "p.opening_hours::json",
    "hours_exceptions": "p.hours_exceptions::json",
    "last_verified_at": _ISO_DATETIME.format("last_verified_at"),
    "distance_m": "NULL::float8",
}


def _properties_sql() -> str:
    """SQL for one row's properties object, StationSchema's fields but the position, in its
    order (row_to_json writes compact JSON, keys as the columns are named)."""
    from app.stations.schemas import StationSchema

    columns = [
        f"{_PROPERTY_SQL.get(name, f'p.{name}')} AS {name}"
        for name in StationSchema().fields
        if name not in ("lon", "lat")
    ]
    # Names from the schema and SQL from this module only: nothing from a request.
    return f"row_to_json((SELECT r FROM (SELECT {', '.join(columns)}) AS r))::text"  # noqa: S608


@cache
def _geojson_page_sql() -> str:
    """SQL of the whole FeatureCollection of a page `p` of listing rows (wgs84), as one text:
    the document `feature_collection` makes of the same rows, made where the rows are."""
    feature = (
        '\'{"type":"Feature","geometry":{"type":"Point","coordinates":[\''
        f" || {_COORDINATE.format('lon')} || ',' || {_COORDINATE.format('lat')}"
        f" || ']}},\"properties\":' || {_properties_sql()}"
        " || ',\"id\":' || to_json(p.id)::text || '}'"
    )
    return (
        '\'{"type":"FeatureCollection","features":[\''
        f" || coalesce(string_agg({feature}, ',' ORDER BY p.name, p.id::uuid), '') || ']}}'"
    )


@cache
def _geojson_document(page: Select) -> Select:
    return select(literal_column(_geojson_page_sql())).select_from(page.subquery("p"))


def geojson_page(session: Session, page: Select, values: dict[str, Any]) -> bytes:
    """The FeatureCollection of `page` (a statement of `service.listing_columns()` with
    `open_now`, limited to one page, built once: `service.map_page_statement`) for `values`,
    positions in WGS-84, written whole by PostgreSQL: one statement and one value back, nothing
    per row in Python."""
    return session.scalar(_geojson_document(page), values).encode()
