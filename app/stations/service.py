"""Stations: the registry (inside the caller's jurisdiction), open periods, nearest-first search."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from geoalchemy2 import Geography, WKTElement
from sqlalchemy import (
    DateTime,
    Float,
    Integer,
    Select,
    Text,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from app.areas.service import AreaPath, resolve_path, resolve_paths
from app.auth.jurisdiction import (
    in_jurisdiction,
    jurisdiction_of,
    require_inside,
    within_area,
)
from app.auth.models import User
from app.core.errors import NotFound, Unprocessable
from app.core.i18n import N_, _
from app.stations import hours
from app.stations.models import Station, StationOpenPeriod, StationVisit
from app.teams.models import Team

# Open periods are kept from yesterday (overnight spans) to this many days ahead.
WINDOW_DAYS = 14


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _point(lon: float, lat: float):
    return func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)


def _hours_error(field: str, exc: hours.HoursError) -> Unprocessable:
    return Unprocessable(
        str(exc),
        extra={"errors": [{"location": "json", "pointer": f"/{field}", "detail": str(exc)}]},
    )


def _apply(session: Session, actor: User | None, station: Station, values: dict[str, Any]) -> None:
    """Set validated values; a new location re-resolves the station's area path. A team must
    exist and, for staff, lie inside their jurisdiction."""
    for key in ("name", "type", "address", "operator", "phone", "capacity", "status"):
        if key in values:
            setattr(station, key, values[key])
    if values.get("team_id") is not None:
        team = session.get(Team, values["team_id"])
        if team is None or (actor is not None and not jurisdiction_of(actor).covers(team.path_ids)):
            raise Unprocessable(
                _("No such team in your jurisdiction."),
                extra={
                    "errors": [
                        {"location": "json", "pointer": "/team_id", "detail": "No such team."}
                    ]
                },
            )
    if "team_id" in values:
        station.team_id = values["team_id"]
    if "amenities" in values:
        station.amenities = sorted(set(values["amenities"]))
    if "opening_hours" in values:
        try:
            station.opening_hours = hours.validate_weekly(values["opening_hours"])
        except hours.HoursError as exc:
            raise _hours_error("opening_hours", exc) from exc
    if "hours_exceptions" in values:
        try:
            station.hours_exceptions = hours.validate_exceptions(values["hours_exceptions"])
        except hours.HoursError as exc:
            raise _hours_error("hours_exceptions", exc) from exc
    if "location" in values:
        lon, lat = values["location"]["lon"], values["location"]["lat"]
        station.geom = WKTElement(f"POINT({lon!r} {lat!r})", srid=4326)
        _set_path(station, resolve_path(session, lon, lat))


def _set_path(station: Station, path: AreaPath) -> None:
    for key, value in path.as_dict().items():
        setattr(station, key, value)


def locate(session: Session, stations: Sequence[Station]) -> None:
    """Set the area path of many stored stations with one resolution query."""
    points = session.execute(
        select(Station.id, func.ST_X(Station.geom), func.ST_Y(Station.geom)).where(
            Station.id.in_([s.id for s in stations])
        )
    ).all()
    by_id = {s.id: s for s in stations}
    for (station_id, _lon, _lat), path in zip(
        points, resolve_paths(session, [(lon, lat) for _id, lon, lat in points]), strict=True
    ):
        _set_path(by_id[station_id], path)
    session.flush()


def create_station(session: Session, actor: User | None, values: dict[str, Any]) -> Station:
    """A station at a place inside the actor's jurisdiction (404 outside it); actor None is the
    operator's CLI."""
    station = Station(id=uuid.uuid4(), status="active", hours_exceptions=[], amenities=[])
    station.external_ref = values.get("external_ref")
    _apply(session, actor, station, values)
    if actor is not None:
        require_inside(actor, station.path_ids, N_("area"))
    session.add(station)
    session.flush()
    refresh_open_periods(session, [station])
    session.refresh(station)
    return station


def update_station(
    session: Session, actor: User | None, station: Station, values: dict[str, Any]
) -> Station:
    reopened = values.get("status") == "active" and station.status != "active"
    _apply(session, actor, station, values)
    if actor is not None:
        require_inside(actor, station.path_ids, N_("area"))  # a move must stay inside too
    if values.get("verified"):
        station.last_verified_at = _now()
    session.flush()
    if reopened or {"opening_hours", "hours_exceptions"} & set(values):
        refresh_open_periods(session, [station])
    session.refresh(station)
    return station


def close_station(session: Session, station: Station) -> Station:
    station.status = "closed"
    session.flush()
    return station


def get_station(session: Session, station_id: uuid.UUID, actor: User | None = None) -> Station:
    """Active stations are public; closed ones only for staff of their area."""
    station = session.get(Station, station_id)
    if station is None:
        raise NotFound(_("No such station."))
    if station.status != "active" and (
        actor is None or not jurisdiction_of(actor).covers(station.path_ids)
    ):
        raise NotFound(_("No such station."))
    return station


def get_managed_station(session: Session, actor: User, station_id: uuid.UUID) -> Station:
    station = session.get(Station, station_id)
    if station is None:
        raise NotFound(_("No such station."))
    require_inside(actor, station.path_ids, N_("station"))
    return station


def refresh_open_periods(
    session: Session, stations: Sequence[Station], today: dt.date | None = None
) -> None:
    """Rebuild the open periods of these stations for yesterday .. today + WINDOW_DAYS (local
    dates, Asia/Shanghai)."""
    today = today or dt.datetime.now(hours.TIMEZONE).date()
    ids = [s.id for s in stations]
    session.execute(delete(StationOpenPeriod).where(StationOpenPeriod.station_id.in_(ids)))
    rows = [
        {"station_id": s.id, "during": Range(start, end, bounds="[)")}
        for s in stations
        for start, end in hours.open_intervals(
            s.opening_hours, s.hours_exceptions, today - dt.timedelta(days=1), WINDOW_DAYS + 2
        )
    ]
    if rows:
        session.execute(insert(StationOpenPeriod), rows)


def open_at(at: dt.datetime):
    """SQL: the station (of the enclosing query) is open at `at`."""
    return exists().where(
        StationOpenPeriod.station_id == Station.id, StationOpenPeriod.during.contains(at)
    )


# How many nearest active stations the fast path reads before filtering (see `nearby`).
NEARBY_FAST_SCAN = 200


def nearby(
    session: Session,
    lon: float,
    lat: float,
    *,
    radius_m: float,
    limit: int,
    types: Iterable[str] = (),
    amenities: Iterable[str] = (),
    open_now: bool = False,
    at: dt.datetime | None = None,
    columns: Sequence | None = None,
) -> list:
    """Active stations within `radius_m` of a WGS-84 point, nearest first (true metres), with
    `distance_m` and `open_now`; each row holds the Station, or `columns` (`listing_columns()`).

    Two plans, chosen here rather than by the planner (which, given a radius and an amenity
    filter, prefers scanning everything in the radius and sorting: tens of ms where stations
    are dense). The fast path reads the NEARBY_FAST_SCAN nearest active stations from the
    geography index in distance order and filters those; its answer is exact when it found
    `limit` matches, or when those stations reach beyond the radius. Otherwise (rare filters
    in a dense area) the bounded query answers: everything in the radius, filtered, sorted.
    """
    at = at or _now()
    here = _point(lon, lat).cast(Geography)
    is_open = open_at(at)
    conditions = []
    types = list(types)
    if types:
        conditions.append(Station.type.in_(types))
    amenities = sorted(set(amenities))
    if amenities:
        conditions.append(Station.amenities.contains(amenities))
    if open_now:
        conditions.append(is_open)
    distance = func.ST_Distance(Station.geog, here)
    selected = (*(columns or (Station,)), distance.label("distance_m"), is_open.label("open_now"))

    knn = Station.geog.op("<->", return_type=Float)(here)
    nearest = (
        select(Station.id.label("id"), knn.label("knn"))
        .where(Station.status == "active")
        .order_by(knn)
        .limit(NEARBY_FAST_SCAN)
        .cte("nearest")
    )
    scanned, reach = session.execute(
        select(func.count(), func.max(nearest.c.knn)).select_from(nearest)
    ).one()
    fast = session.execute(
        select(*selected)
        .join(nearest, nearest.c.id == Station.id)
        .where(distance <= radius_m, *conditions)
        .order_by(distance, Station.id)
        .limit(limit)
    ).all()
    # `<->` (which the index walks) measures on the sphere, ST_Distance on the spheroid; they
    # differ by under 0.5%. The fast answer stands when no station beyond the scanned ones can
    # belong in it: all were scanned, or the scan reached past the radius, or past the last
    # answer with a margin for that difference.
    reach = reach or 0.0
    if (
        scanned < NEARBY_FAST_SCAN
        or reach >= radius_m * 1.01
        or (len(fast) == limit and fast[-1].distance_m * 1.01 < reach)
    ):
        return fast
    return session.execute(
        select(*selected)
        .where(Station.status == "active", func.ST_DWithin(Station.geog, here, radius_m))
        .where(*conditions)
        .order_by(distance, Station.id)
        .limit(limit)
    ).all()


def for_export(actor: User, area_id: uuid.UUID | None) -> Select:
    """All stations (closed too) inside the actor's jurisdiction and `area_id`, for export."""
    query = select(Station).where(in_jurisdiction(actor, Station))
    if area_id is not None:
        query = query.where(within_area(Station, area_id))
    return query.order_by(Station.name, Station.id)


def listing_columns() -> list:
    """The columns of a station as StationSchema names them, for answers written without ORM
    objects or marshmallow (app/core/fastjson.py): ids as text, the JSONB documents as their
    JSON text, the position as two numbers (WGS-84; no WKB decoded, no shapely per row).
    `open_now` and `distance_m` are the query's."""
    return [
        Station.id.cast(Text).label("id"),
        Station.external_ref,
        Station.type,
        Station.name,
        Station.address,
        func.ST_X(Station.geom).label("lon"),
        func.ST_Y(Station.geom).label("lat"),
        Station.team_id.cast(Text).label("team_id"),
        Station.operator,
        Station.phone,
        Station.amenities,
        Station.opening_hours.cast(Text).label("opening_hours"),
        Station.hours_exceptions.cast(Text).label("hours_exceptions"),
        Station.capacity,
        Station.status,
        Station.last_verified_at,
        Station.generated,
        Station.subdistrict_id.cast(Text).label("subdistrict_id"),
        Station.community_id.cast(Text).label("community_id"),
    ]


def in_bbox(
    bbox: tuple[Any, Any, Any, Any] | None,
    types: Iterable[str] | BindParameter = (),
    at: dt.datetime | BindParameter | None = None,
    columns: Sequence | None = None,
) -> Select:
    """Active stations inside a WGS-84 bbox (min lon, min lat, max lon, max lat), for the map,
    with `open_now`; ordered by name for stable pages. Rows hold the Station, or `columns`.
    Values may be bound parameters (`map_page_statement`)."""
    is_open = open_at(_now() if at is None else at).label("open_now")
    query = select(*(columns or (Station,)), is_open)
    query = query.where(Station.status == "active").order_by(Station.name, Station.id)
    if bbox is not None:
        query = query.where(Station.geom.intersects(func.ST_MakeEnvelope(*bbox, 4326)))
    if not isinstance(types, BindParameter):
        types = list(types)
    if isinstance(types, BindParameter) or types:
        query = query.where(Station.type.in_(types))
    return query


_BBOX = ("west", "south", "east", "north")


@cache
def map_page_statement(with_bbox: bool, with_types: bool) -> Select:
    """One page of `in_bbox` in `listing_columns()`, built once per kind and executed with
    `map_page_values`: the hot map listing builds (and keys for SQLAlchemy's compiled cache) no
    SQL expression per request."""
    bbox = tuple(bindparam(name, type_=Float) for name in _BBOX) if with_bbox else None
    types = bindparam("types", expanding=True) if with_types else ()
    at = bindparam("at", type_=DateTime(timezone=True))
    query = in_bbox(bbox, types, at, columns=listing_columns())
    return query.limit(bindparam("limit", type_=Integer)).offset(bindparam("offset", type_=Integer))


def map_page_values(
    bbox: tuple[float, float, float, float] | None,
    types: Sequence[str],
    page: int,
    page_size: int,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The values of `map_page_statement(bbox is not None, bool(types))` for one page."""
    values: dict[str, Any] = {
        "at": at or _now(),
        "limit": page_size,
        "offset": (page - 1) * page_size,
    }
    if bbox is not None:
        values.update(zip(_BBOX, bbox, strict=True))
    if types:
        values["types"] = list(types)
    return values


# --- utilisation ------------------------------------------------------------------------------

MAX_STATS_DAYS = 366
_LOCAL = "Asia/Shanghai"


def record_visit(
    session: Session, station: Station, code: str, volunteer_id: uuid.UUID | None
) -> StationVisit:
    """A scan of the station's QR code (its visit code must match)."""
    if station.status != "active":
        raise NotFound(_("No such station."))
    if not secrets.compare_digest(code.encode(), station.visit_code.encode()):
        raise Unprocessable(
            _("This code is not the code of this station."),
            extra={"errors": [{"location": "json", "pointer": "/code", "detail": "Wrong code."}]},
        )
    visit = StationVisit(
        id=uuid.uuid4(), station_id=station.id, visited_at=_now(), volunteer_id=volunteer_id
    )
    session.add(visit)
    session.flush()
    return visit


def _period(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """UTC bounds of the local (Asia/Shanghai) dates start..end inclusive."""
    if (
        not (dt.date(2000, 1, 1) <= start <= end <= dt.date(2100, 12, 31))
        or (end - start).days >= MAX_STATS_DAYS
    ):
        raise Unprocessable(
            _(
                "`to` must be on or after `from`, at most %(days)s days on.",
                days=MAX_STATS_DAYS,
            )
        )
    first = dt.datetime.combine(start, dt.time(), hours.TIMEZONE)
    after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), hours.TIMEZONE)
    return first, after


def station_stats(session: Session, station: Station, start: dt.date, end: dt.date) -> dict:
    """Visits of one station per local day and per hour of the day, over start..end."""
    first, after = _period(start, end)
    local = func.timezone(_LOCAL, StationVisit.visited_at)
    in_period = (
        StationVisit.station_id == station.id,
        StationVisit.visited_at >= first,
        StationVisit.visited_at < after,
    )
    day = func.date(local)
    by_day = session.execute(
        select(day.label("date"), func.count().label("visits"))
        .where(*in_period)
        .group_by(day)
        .order_by(day)
    ).all()
    hour = func.extract("hour", local).cast(Integer)
    by_hour = dict(
        session.execute(select(hour, func.count()).where(*in_period).group_by(hour)).all()
    )
    return {
        "station_id": station.id,
        "from_": start,
        "to": end,
        "total": sum(row.visits for row in by_day),
        "by_day": [row._asdict() for row in by_day],
        "by_hour": [{"hour": h, "visits": by_hour.get(h, 0)} for h in range(24)],
    }


def visits_summary(
    session: Session, actor: User, area_id: uuid.UUID | None, start: dt.date, end: dt.date
) -> tuple[Select, list[dict]]:
    """Visits per station per local day inside the actor's jurisdiction (and `area_id`), as a
    query to page through, and the busiest hours of the day over all of them."""
    first, after = _period(start, end)
    local = func.timezone(_LOCAL, StationVisit.visited_at)
    scope = in_jurisdiction(actor, Station)
    conditions = [scope, StationVisit.visited_at >= first, StationVisit.visited_at < after]
    if area_id is not None:
        conditions.append(within_area(Station, area_id))
    day = func.date(local)
    per_station_day = (
        select(
            Station.id.label("station_id"),
            Station.name,
            day.label("date"),
            func.count().label("visits"),
        )
        .join(Station, Station.id == StationVisit.station_id)
        .where(*conditions)
        .group_by(Station.id, Station.name, day)
        .order_by(day, Station.name, Station.id)
    )
    hour = func.extract("hour", local).cast(Integer)
    busiest = session.execute(
        select(hour.label("hour"), func.count().label("visits"))
        .select_from(StationVisit)
        .join(Station, Station.id == StationVisit.station_id)
        .where(*conditions)
        .group_by(hour)
        .order_by(func.count().desc(), hour)
    ).all()
    return per_station_day, [row._asdict() for row in busiest]
