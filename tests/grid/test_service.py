"""Grid aggregate rules, called on the service: cells named by id, the trend against the window
just before, merged tips never counted, the jurisdiction, hotspots against their own baseline,
every bucket of a series, and the Poisson tail they rest on."""

from __future__ import annotations

import datetime as dt
import math
import uuid

import h3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.core.errors import NotFound
from app.grid import service
from tests.patrols.conftest import HOME

NANLANG, JIANWAI, CHAOWAI_COMMUNITY = "110105001024", "110105001000", "110105002024"
END = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
HEX9 = {"cells": "hex", "resolution": 9}


@pytest.fixture
def staff(create_user):
    return create_user(roles=["community_admin"], jurisdiction=[JIANWAI])


@pytest.fixture
def reporter(create_user):
    return create_user(home=NANLANG)


def home_cell(res: int = 9) -> str:
    return h3.latlng_to_cell(HOME[1], HOME[0], res)


def cells(session, user, start=END - 7 * DAY, end=END, **args) -> dict[str, dict]:
    rows = service.tip_cells(session, user, {**HEX9, **args}, start, end)
    return {row["cell_id"]: row for row in rows}


def test_a_grid_cell_id_and_an_h3_index_are_cells_and_nothing_else_is():
    grid_cell = uuid.uuid4()
    assert service.parse_cell(str(grid_cell)) == ("admin", grid_cell)
    kind, value = service.parse_cell(home_cell())
    assert kind == "hex" and service._cell_value(kind, value) == home_cell()
    with pytest.raises(NotFound):
        service.parse_cell("not-a-cell")


def test_the_trend_compares_with_the_window_of_equal_length_just_before(
    session, staff, reporter, put
):
    put(reporter, HOME, END - DAY)
    put(reporter, HOME, END - 2 * DAY)
    put(reporter, HOME, END - 8 * DAY)  # the week before
    put(reporter, HOME, END - 15 * DAY)  # before that: in neither window
    row = cells(session, staff)[home_cell()]
    assert row["total"] == 2
    assert row["change"] == {"previous": 1, "delta": 1, "ratio": 2.0}


def test_a_trend_against_nothing_has_no_ratio(session, staff, reporter, put):
    put(reporter, HOME, END - DAY)
    assert cells(session, staff)[home_cell()]["change"]["ratio"] is None


def test_a_merged_tip_is_never_counted(session, staff, reporter, put):
    kept = put(reporter, HOME, END - DAY)
    put(reporter, HOME, END - DAY, into=kept)
    assert cells(session, staff)[home_cell()]["total"] == 1


def test_only_open_statuses_count_as_open(session, staff, reporter, put):
    put(reporter, HOME, END - DAY)
    put(reporter, HOME, END - DAY, status="resolved")
    row = cells(session, staff)[home_cell()]
    assert row["by_status"] == {"submitted": 1, "resolved": 1}
    assert row["open"] == 1


def test_staff_see_only_the_cells_of_their_jurisdiction(session, create_user, reporter, put, area):
    surface = func.ST_PointOnSurface(area(CHAOWAI_COMMUNITY).geom)
    chaowai = session.execute(select(func.ST_X(surface), func.ST_Y(surface))).one()
    put(reporter, HOME, END - DAY)
    put(reporter, chaowai, END - DAY)
    grid_staff = create_user(roles=["grid_staff"], jurisdiction=[NANLANG])
    assert list(cells(session, grid_staff)) == [home_cell()]


def hotspot_cells(session, staff) -> list[str]:
    args = {**HEX9, "window_days": 7}
    return [spot["cell_id"] for spot in service.hotspots(session, staff, args, END)]


def test_a_burst_against_a_quiet_baseline_is_a_hotspot(session, staff, reporter, put):
    for n in range(4):  # P(X >= 4 | mean 0.5) = 0.0018: three would be 0.014
        put(reporter, HOME, END - (n + 1) * DAY)
    assert hotspot_cells(session, staff) == [home_cell()]


def test_fewer_tips_than_the_minimum_are_never_a_hotspot(
    session, staff, reporter, put, monkeypatch
):
    monkeypatch.setattr(service, "HOTSPOT_P", 0.5)  # unlikely enough: only the minimum stops it
    for n in range(service.MIN_HOTSPOT_TIPS - 1):
        put(reporter, HOME, END - (n + 1) * DAY)
    assert hotspot_cells(session, staff) == []
    put(reporter, HOME, END - DAY)
    assert hotspot_cells(session, staff) == [home_cell()]


def test_a_cell_as_busy_as_its_baseline_is_no_hotspot(session, staff, reporter, put):
    for week in range(service.BASELINE_WINDOWS + 1):
        for n in range(service.MIN_HOTSPOT_TIPS):
            put(reporter, HOME, END - dt.timedelta(days=7 * week + n + 1))
    assert hotspot_cells(session, staff) == []


def test_a_series_has_every_local_day_of_the_period(session, staff, reporter, put):
    put(reporter, HOME, END - DAY)
    answer = service.series(
        session, staff, home_cell(), {"interval": "day"}, END - 5 * DAY, END, zone="Asia/Shanghai"
    )
    assert len(answer["points"]) == 6  # END is 16:00 in Beijing: the first day is cut short
    assert [p["count"] for p in answer["points"]] == [0, 0, 0, 0, 1, 0]


def test_the_poisson_tail_of_nothing_is_certain():
    assert service.poisson_tail(0, 3.0) == 1.0


@given(mean=st.floats(0.1, 50), count=st.integers(1, 60))
def test_the_poisson_tail_is_one_minus_the_mass_below_the_count(mean, count):
    below = sum(math.exp(-mean) * mean**k / math.factorial(k) for k in range(count))
    assert service.poisson_tail(count, mean) == pytest.approx(max(0.0, 1 - below), abs=1e-9)


@given(mean=st.floats(0.1, 50), count=st.integers(0, 60))
def test_the_poisson_tail_shrinks_as_the_count_grows(mean, count):
    assert service.poisson_tail(count + 1, mean) <= service.poisson_tail(count, mean)
