"""Station rules, called on the service: who sees a closed station, where staff may place and
move one, what a visit needs, and which local day a visit counts on."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from app.core.errors import NotFound, Unprocessable
from app.stations import service
from app.stations.models import StationOpenPeriod, StationVisit

NANLANG, JIANWAI, CHAOWAI_COMMUNITY = "110105001024", "110105001000", "110105002024"
ALWAYS = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
HERE = (116.4604, 39.9075)  # in 南郎家园 (WGS-84)


@pytest.fixture
def chaowai(session, area) -> tuple[float, float]:
    """A point of a community of 朝外街道, outside 建外街道."""
    geom = func.ST_PointOnSurface(area(CHAOWAI_COMMUNITY).geom)
    return session.execute(select(func.ST_X(geom), func.ST_Y(geom))).one()


@pytest.fixture
def staff(create_user):
    return create_user(roles=["grid_staff"], jurisdiction=[JIANWAI])


@pytest.fixture
def new_station(session, staff):
    def make(at=HERE, actor=None, **overrides):
        values = {
            "name": "骑手驿站",
            "type": "rider_station",
            "location": {"lon": at[0], "lat": at[1]},
            "opening_hours": ALWAYS,
            **overrides,
        }
        return service.create_station(session, actor or staff, values)

    return make


def test_a_station_outside_the_staffs_jurisdiction_is_not_created(new_station, chaowai):
    with pytest.raises(NotFound):
        new_station(at=chaowai)


def test_a_station_cannot_be_moved_out_of_the_jurisdiction(session, new_station, staff, chaowai):
    station = new_station()
    with pytest.raises(NotFound):
        service.update_station(
            session, staff, station, {"location": {"lon": chaowai[0], "lat": chaowai[1]}}
        )


def test_amenities_are_stored_once_each_in_order(new_station):
    station = new_station(amenities=["wifi", "charging", "wifi"])
    assert station.amenities == ["charging", "wifi"]


def test_a_team_outside_the_jurisdiction_cannot_run_a_station(
    new_station, session, create_user, area
):
    from app.teams import service as teams

    elsewhere = create_user(roles=["community_admin"], jurisdiction=["110105002000"])
    team = teams.create_team(
        session,
        elsewhere,
        {"name": "朝外队", "kind": "patrol_team", "area_id": area(CHAOWAI_COMMUNITY).id},
    )
    with pytest.raises(Unprocessable):
        new_station(team_id=team.id)


def test_a_closed_station_is_hidden_from_the_public_and_from_staff_elsewhere(
    session, new_station, staff, create_user
):
    station = service.close_station(session, new_station())
    elsewhere = create_user(roles=["grid_staff"], jurisdiction=[CHAOWAI_COMMUNITY])
    for actor in (None, elsewhere):
        with pytest.raises(NotFound):
            service.get_station(session, station.id, actor)
    assert service.get_station(session, station.id, staff) is station


def test_the_map_lists_active_stations_only(session, new_station):
    open_one, closed = new_station(name="开着的"), new_station(name="关了的")
    service.close_station(session, closed)
    west, south = HERE[0] - 0.001, HERE[1] - 0.001
    listed = {row[0].id for row in session.execute(service.in_bbox((west, south, *HERE)))}
    assert open_one.id in listed and closed.id not in listed


def test_the_export_holds_closed_stations_of_the_jurisdiction_only(
    session, new_station, staff, create_user, chaowai
):
    closed = service.close_station(session, new_station())
    admin = create_user(roles=["admin"])
    elsewhere = new_station(at=chaowai, actor=admin)
    exported = set(session.scalars(service.for_export(staff, None)))
    assert closed in exported and elsewhere not in exported


def test_reopening_a_station_gives_it_open_periods_again(session, new_station, staff):
    station = new_station()
    service.close_station(session, station)
    session.execute(
        StationOpenPeriod.__table__.delete().where(StationOpenPeriod.station_id == station.id)
    )
    service.update_station(session, staff, station, {"status": "active"})
    periods = session.scalar(select(func.count()).where(StationOpenPeriod.station_id == station.id))
    assert periods > 0


def test_a_visit_needs_the_stations_own_code(session, new_station):
    station = new_station()
    with pytest.raises(Unprocessable):
        service.record_visit(session, station, station.visit_code[::-1] + "x", None)
    visit = service.record_visit(session, station, station.visit_code, None)
    assert visit.station_id == station.id


def test_a_closed_station_takes_no_visits(session, new_station):
    station = service.close_station(session, new_station())
    with pytest.raises(NotFound):
        service.record_visit(session, station, station.visit_code, None)


def test_a_visit_counts_on_the_local_day_and_hour(session, new_station):
    station = new_station()
    late_utc = dt.datetime(2026, 11, 2, 16, 30, tzinfo=dt.UTC)  # 00:30 on 3 Nov in Beijing
    session.add(StationVisit(station_id=station.id, visited_at=late_utc))
    session.flush()
    stats = service.station_stats(session, station, dt.date(2026, 11, 3), dt.date(2026, 11, 3))
    assert stats["total"] == 1
    assert stats["by_day"] == [{"date": dt.date(2026, 11, 3), "visits": 1}]
    assert stats["by_hour"][0] == {"hour": 0, "visits": 1}
    before = service.station_stats(session, station, dt.date(2026, 11, 2), dt.date(2026, 11, 2))
    assert before["total"] == 0


LONGEST = dt.timedelta(days=service.MAX_STATS_DAYS - 1)  # first and last day both count


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.date(2026, 11, 3), dt.date(2026, 11, 2)),
        (dt.date(2025, 1, 1), dt.date(2025, 1, 1) + LONGEST + dt.timedelta(days=1)),
    ],
)
def test_a_period_backwards_or_longer_than_the_limit_is_refused(session, new_station, start, end):
    with pytest.raises(Unprocessable):
        service.station_stats(session, new_station(), start, end)


def test_a_period_of_exactly_the_limit_is_answered(session, new_station):
    start = dt.date(2025, 1, 1)
    stats = service.station_stats(session, new_station(), start, start + LONGEST)
    assert stats["total"] == 0
