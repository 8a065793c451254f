"""The console's grid page through the Flask client: the cells and their figures come from the
API's grid and coverage services, inside the staff member's areas only; 网格 cells or
hexagons; a cell's series; bad filters are a clear message."""

from __future__ import annotations

import datetime as dt
import uuid

import h3
import pytest
import sqlalchemy as sa

from app.areas.models import Area
from app.tips.models import Tip
from tests.console.conftest import sign_in
from tests.console.test_triage import submit_tip
from tests.patrols.conftest import item, send, start_patrol  # noqa: F401 - fixtures
from tests.tips.conftest import NEIGHBOUR

NANLANG, BEILANG = "110105001024", "110105001025"


def cells_of(console, query: str = "") -> dict[str, dict]:
    answer = console.get(f"/console/grid/cells.geojson?{query}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "application/geo+json"
    return {f["properties"]["cell_id"]: f for f in answer.get_json()["features"]}


def tip_row(session, tip_id: str) -> Tip:
    session.expire_all()
    return session.get(Tip, uuid.UUID(tip_id))


def community_of_cells(session, cell_ids) -> set[uuid.UUID]:
    ids = [uuid.UUID(c) for c in cell_ids]
    return set(session.scalars(sa.select(Area.community_id).where(Area.id.in_(ids))))


def test_the_grid_draws_the_staff_members_cells_with_their_clue_counts(staff_console, session):
    console, _user = staff_console
    tip_id = submit_tip(console)
    submit_tip(console)
    cell = str(tip_row(session, tip_id).grid_cell_id)
    cells = cells_of(console)
    assert cells[cell]["properties"]["total"] >= 2
    assert cells[cell]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    html = console.get("/console/grid").get_data(as_text=True)
    assert f'data-cell-id="{cell}"' in html


def test_a_communitys_staff_do_not_get_another_communitys_cells(
    staff_console, session, create_user, area
):
    console, _user = staff_console
    inside = tip_row(session, submit_tip(console))
    outside = tip_row(session, submit_tip(console, at=NEIGHBOUR))
    assert outside.community_id != inside.community_id
    cells = cells_of(console)
    assert str(outside.grid_cell_id) not in cells
    # Every cell on the map, gaps included, is one of the community's own grid cells.
    assert community_of_cells(session, cells) == {area(NANLANG).id}

    other = create_user(roles=["grid_staff"], jurisdiction=[BEILANG])
    sign_in(console, other)
    theirs = cells_of(console)
    assert str(inside.grid_cell_id) not in theirs
    assert community_of_cells(session, theirs) == {area(BEILANG).id}
    assert str(inside.grid_cell_id) not in console.get("/console/grid").get_data(as_text=True)
    # Nor its clues through its series, asked for by id.
    series = console.get(f"/console/grid/series/{inside.grid_cell_id}.json").get_json()
    assert sum(point["count"] for point in series["points"]) == 0


def test_switching_to_hexagons_counts_per_h3_cell(staff_console, session):
    console, _user = staff_console
    tip = tip_row(session, submit_tip(console))
    hexagon = h3.latlng_to_cell(*reversed(_lon_lat(session, tip)), 9)
    cells = cells_of(console, "cells=hex&resolution=9")
    assert cells[hexagon]["properties"]["total"] >= 1
    assert all(h3.is_valid_cell(c) and h3.get_resolution(c) == 9 for c in cells)
    assert len(cells[hexagon]["geometry"]["coordinates"][0]) == 7  # a closed hexagon


def _lon_lat(session, tip: Tip) -> tuple[float, float]:
    return session.execute(sa.select(sa.func.ST_X(tip.geom), sa.func.ST_Y(tip.geom))).one()


def test_the_cells_come_in_the_base_maps_coordinate_system(staff_console, session):
    console, _user = staff_console
    cell = str(tip_row(session, submit_tip(console)).grid_cell_id)
    wgs = cells_of(console)[cell]["geometry"]["coordinates"][0][0]
    gcj = cells_of(console, "crs=gcj02")[cell]["geometry"]["coordinates"][0][0]
    assert 0.001 < abs(gcj[0][0] - wgs[0][0]) < 0.01  # GCJ-02: a few hundred metres east
    assert console.get("/console/grid/cells.geojson?crs=bd09").status_code == 422


def test_clicking_a_cell_gives_its_series_per_day(staff_console, session):
    console, _user = staff_console
    cell = str(tip_row(session, submit_tip(console)).grid_cell_id)
    series = console.get(f"/console/grid/series/{cell}.json?window=7d").get_json()
    assert series["interval"] == "day" and len(series["points"]) >= 63
    assert series["points"][-1]["count"] >= 1
    longer = console.get(f"/console/grid/series/{cell}.json?window=30d").get_json()
    assert longer["interval"] == "week"
    assert console.get("/console/grid/series/not-a-cell.json").status_code == 404


@pytest.mark.parametrize(
    ("query", "hint"),
    [
        ("window=forever", "周期"),
        ("cells=squares", "格子类型"),
        ("resolution=12", "六边形大小"),
        ("hours=5", "未巡逻时长"),
        ("area_id=x", "区域"),
    ],
)
def test_a_bad_filter_is_a_page_saying_which_filter_and_what_it_takes(staff_console, query, hint):
    console, _user = staff_console
    for path in ("/console/grid", "/console/grid/cells.geojson"):
        answer = console.get(f"{path}?{query}")
        assert answer.status_code == 422
        assert answer.mimetype == "text/html"
        html = answer.get_data(as_text=True)
        assert 'id="error-message"' in html and hint in html


def test_the_page_has_a_legend_for_every_colouring_and_a_nav_link(staff_console):
    console, _user = staff_console
    html = console.get("/console/grid").get_data(as_text=True)
    for legend in ("legend-tips", "legend-risk", "legend-gaps"):
        assert f'id="{legend}"' in html
    assert 'href="/console/grid"' in html and 'href="/console/organisations"' in html


def test_a_patrolled_cell_without_clues_is_on_the_map_and_not_a_gap(
    staff_console,
    area,
    create_user,
    start_patrol,  # noqa: F811 - the fixture imported above
    send,  # noqa: F811
):
    console, _user = staff_console
    volunteer = create_user(roles=["volunteer"], home=NANLANG)
    patrol = start_patrol(volunteer)
    now = dt.datetime.now(dt.UTC)
    fixes = [item(at=now - dt.timedelta(minutes=m)) for m in range(10, 0, -1)]
    assert send(volunteer, patrol["id"], fixes).status_code == 200
    home = cells_of(console)[str(area(f"{NANLANG}-G005").id)]["properties"]  # HOME lies in G005
    assert (home["total"], home["unwatched"]) == (0, False)
    assert home["patrol_minutes"] >= 8 and home["last_patrolled_at"]
