"""The public heatmap's rules, at the service: a cell is published only with k distinct named
reporters inside the window [end - window_days, end), and a bbox holding more cells than the cap
is refused, never cut short. And the filters every staff aggregate applies keep exactly the tips
they name."""

from __future__ import annotations

import datetime as dt

import h3
import pytest
from flask import current_app

from app.core.errors import Unprocessable
from app.grid import service as grid_service
from tests.patrols.conftest import HOME

BBOX = (116.40, 39.85, 116.52, 39.95)
# Three places in three different coarse (resolution 7) cells inside BBOX.
PLACES = [HOME, (116.47, 39.93), (116.42, 39.88)]
END = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
WINDOW_DAYS = 30


def coarse(place) -> str:
    return h3.latlng_to_cell(place[1], place[0], 7)


@pytest.fixture
def k(app) -> int:
    return app.config["HEATMAP_MIN_REPORTERS"]


@pytest.fixture
def reporters(create_user, k):
    return [create_user(roles=["volunteer"]) for _ in range(k)]


def published(session) -> dict[str, int]:
    k = current_app.config["HEATMAP_MIN_REPORTERS"]
    rows = grid_service.public_heatmap(session, BBOX, WINDOW_DAYS, END, k=k)
    return {row["cell_id"]: row["count"] for row in rows}


def test_a_reporter_at_the_windows_first_instant_counts_towards_k(session, put, reporters):
    for reporter in reporters[:-1]:
        put(reporter, HOME, END - dt.timedelta(days=1))
    put(reporters[-1], HOME, END - dt.timedelta(days=WINDOW_DAYS))
    assert published(session) == {coarse(HOME): len(reporters)}


def test_a_reporter_at_the_windows_end_does_not_count_towards_k(session, put, reporters):
    for reporter in reporters[:-1]:
        put(reporter, HOME, END - dt.timedelta(days=1))
    put(reporters[-1], HOME, END)
    put(reporters[-1], HOME, END - dt.timedelta(days=WINDOW_DAYS, microseconds=1))
    assert published(session) == {}


def test_a_merged_tip_is_no_reporter(session, put, reporters):
    target = put(reporters[0], HOME, END - dt.timedelta(days=2))
    for reporter in reporters[1:-1]:
        put(reporter, HOME, END - dt.timedelta(days=1))
    put(reporters[-1], HOME, END - dt.timedelta(days=1), into=target)
    assert published(session) == {}


def _cells_of_k_reporters(put, reporters, count: int) -> None:
    for place in PLACES[:count]:
        for reporter in reporters:
            put(reporter, place, END - dt.timedelta(days=1))


def test_as_many_cells_as_the_cap_are_all_published(session, put, reporters, monkeypatch):
    monkeypatch.setattr(grid_service, "MAX_CELLS", 2)
    _cells_of_k_reporters(put, reporters, 2)
    assert set(published(session)) == {coarse(p) for p in PLACES[:2]}


def test_one_cell_more_than_the_cap_is_refused_not_cut_short(session, put, reporters, monkeypatch):
    monkeypatch.setattr(grid_service, "MAX_CELLS", 2)
    _cells_of_k_reporters(put, reporters, 3)
    with pytest.raises(Unprocessable):
        published(session)


# --- the filters of the staff aggregates --------------------------------------------------------


@pytest.fixture
def staff(create_user):
    return create_user(roles=["grid_staff"], jurisdiction=["110105001000"])


def totals(client, token_for, staff, **args) -> int:
    args = {"cells": "hex", "resolution": 7, "to": END.isoformat(), **args}
    response = client.get("/api/v1/grid/tips", query_string=args, headers=token_for(staff))
    assert response.status_code == 200, response.get_json()
    return sum(f["properties"]["total"] for f in response.get_json()["features"])


def test_each_filter_of_the_staff_aggregates_keeps_exactly_the_tips_it_names(
    client, token_for, staff, put, reporters
):
    someone = reporters[0]
    put(someone, HOME, END - dt.timedelta(days=1), category="traffic")
    put(someone, HOME, END - dt.timedelta(days=1), category="fire_hazard")
    put(someone, HOME, END - dt.timedelta(days=1), category="traffic", status="resolved")
    assert totals(client, token_for, staff) == 3
    assert totals(client, token_for, staff, category="fire_hazard") == 1
    assert totals(client, token_for, staff, status="resolved") == 1
    near_home = f"{HOME[0] - 0.001},{HOME[1] - 0.001},{HOME[0] + 0.001},{HOME[1] + 0.001}"
    assert totals(client, token_for, staff, bbox=near_home) == 3
    elsewhere = f"{HOME[0] + 0.01},{HOME[1] + 0.01},{HOME[0] + 0.02},{HOME[1] + 0.02}"
    assert totals(client, token_for, staff, bbox=elsewhere) == 0
