"""Coverage for staff: patrolled cells, gaps; their jurisdiction only."""

from __future__ import annotations

import datetime as dt

import h3
import pytest

from geo.cells import from_bigint, parent_of, to_bigint
from tests.patrols.conftest import COMMUNITY, HOME, east, item, now

HOME_CELL = f"{COMMUNITY}-G005"  # the cell of HOME


@pytest.fixture
def staff(create_user):
    return create_user(roles=["grid_staff"], jurisdiction=[COMMUNITY])


@pytest.fixture
def walked(volunteer, create_user, start_patrol, send):
    """Two volunteers patrolled HOME_CELL: one for 3 fixes 2 minutes apart, one for 2 fixes."""
    other = create_user(roles=["volunteer"], home=COMMUNITY)
    t0 = now() - dt.timedelta(hours=2)
    first = start_patrol(volunteer, started_at=(t0 - dt.timedelta(minutes=1)).isoformat())
    send(
        volunteer,
        first["id"],
        [item(t0 + dt.timedelta(minutes=2 * n), lon=east(5 * n)) for n in range(3)],
    )
    second = start_patrol(other, started_at=(t0 - dt.timedelta(minutes=1)).isoformat())
    send(other, second["id"], [item(t0 + dt.timedelta(minutes=30 * n)) for n in range(2)])
    return t0


def cells(client, token_for, user, **args):
    response = client.get("/api/v1/coverage/cells", query_string=args, headers=token_for(user))
    assert response.status_code == 200, response.json
    assert response.mimetype == "application/geo+json"
    return {f["properties"]["cell_id"]: f for f in response.json["features"]}


def test_admin_cells_count_checkins_patrollers_and_minutes(walked, client, token_for, staff, area):
    found = cells(client, token_for, staff)
    cell = found[str(area(HOME_CELL).id)]
    assert cell["properties"]["checkins"] == 5
    assert cell["properties"]["patrollers"] == 2
    # 2 + 2 minutes for the first walk; the second's 30-minute gap counts 10 (the cap).
    assert cell["properties"]["patrol_minutes"] == 14.0
    assert cell["geometry"]["type"] == "MultiPolygon"
    assert set(found) == {str(area(HOME_CELL).id)}


def test_hex_cells_at_a_coarser_resolution_aggregate_the_stored_fine_cell(
    walked, client, token_for, staff
):
    found = cells(client, token_for, staff, cells="hex", resolution=7)
    expected = h3.cell_to_parent(h3.latlng_to_cell(HOME[1], HOME[0], 9), 7)
    assert list(found) == [expected]
    assert found[expected]["properties"]["checkins"] == 5
    assert found[expected]["geometry"]["type"] == "Polygon"


def test_staff_elsewhere_see_no_cells_and_no_gaps_here(walked, client, token_for, create_user):
    elsewhere = create_user(roles=["grid_staff"], jurisdiction=["110105002000"])
    assert cells(client, token_for, elsewhere) == {}
    gaps = client.get("/api/v1/coverage/gaps", headers=token_for(elsewhere)).json["features"]
    assert all(f["properties"]["last_patrolled_at"] is None for f in gaps)


def test_the_period_bounds_the_count(walked, client, token_for, staff, area):
    later = cells(
        client, token_for, staff, **{"from": (walked + dt.timedelta(minutes=3)).isoformat()}
    )
    assert later[str(area(HOME_CELL).id)]["properties"]["checkins"] == 2


def test_gaps_list_the_unwatched_admin_cells_of_the_jurisdiction(
    walked, client, token_for, staff, area, session
):
    from sqlalchemy import func, select

    from app.areas.models import Area

    response = client.get(
        "/api/v1/coverage/gaps", query_string={"hours": 24}, headers=token_for(staff)
    )
    assert response.status_code == 200
    ids = [f["properties"]["cell_id"] for f in response.json["features"]]
    grid_cells = session.scalar(
        select(func.count()).where(
            Area.level == "grid_cell", Area.community_id == area(COMMUNITY).id
        )
    )
    assert str(area(HOME_CELL).id) not in ids
    assert len(ids) == grid_cells - 1
    one_hour = client.get(
        "/api/v1/coverage/gaps", query_string={"hours": 1}, headers=token_for(staff)
    ).json
    watched = {f["properties"]["cell_id"]: f["properties"] for f in one_hour["features"]}
    assert watched[str(area(HOME_CELL).id)]["last_patrolled_at"] is not None
    assert watched[str(area(HOME_CELL).id)]["hours_unwatched"] >= 1


def test_hex_gaps_cover_the_jurisdiction(walked, client, token_for, staff):
    features = client.get(
        "/api/v1/coverage/gaps",
        query_string={"cells": "hex", "resolution": 9},
        headers=token_for(staff),
    ).json["features"]
    ids = {f["properties"]["cell_id"] for f in features}
    assert h3.latlng_to_cell(HOME[1], HOME[0], 9) not in ids
    assert len(ids) > 3


def test_a_period_over_92_days_or_backwards_is_a_422(client, token_for, staff):
    for args in (
        {"from": (now() - dt.timedelta(days=100)).isoformat()},
        {"from": now().isoformat(), "to": (now() - dt.timedelta(days=1)).isoformat()},
        {"cells": "triangles"},
        {"resolution": 12},
    ):
        response = client.get("/api/v1/coverage/cells", query_string=args, headers=token_for(staff))
        assert response.status_code == 422, args
        assert response.mimetype == "application/problem+json"


def test_volunteers_cannot_read_coverage(client, token_for, volunteer):
    assert client.get("/api/v1/coverage/cells", headers=token_for(volunteer)).status_code == 403


def test_the_sql_parent_arithmetic_matches_h3():
    cell = h3.latlng_to_cell(39.91, 116.45, 9)
    for res in range(10):
        assert from_bigint(parent_of(to_bigint(cell), res)) == h3.cell_to_parent(cell, res)
