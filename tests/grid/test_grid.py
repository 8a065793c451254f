"""Clues by grid cell: counts, jurisdiction, trends, hotspots, risk against coverage, series,
the public heatmap's k-anonymity, 304s."""

from __future__ import annotations

import datetime as dt
import time

import h3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from app.tips import service as tips_service
from app.tips.models import Tip, TipCategory
from tests.patrols.conftest import HOME, east, item

COMMUNITY = "110105001024"
OTHER = (116.455032, 39.907931)  # grid cell G008 of the same community: another res-9 hex


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def staff(create_user):
    return create_user(roles=["grid_staff"], jurisdiction=[COMMUNITY])


@pytest.fixture
def tip(session, create_user):
    """tip(category, at=(lon, lat), ago=timedelta, status=..., reporter=user|None)."""
    default_reporter = create_user(roles=["volunteer"], home=COMMUNITY)

    def make(
        category="traffic", at=HOME, ago=dt.timedelta(days=1), status=None, reporter=..., into=None
    ):
        who = default_reporter if reporter is ... else reporter
        row = tips_service.submit(
            session,
            who,
            {
                "category": category,
                "description": "测试线索",
                "location": {"lon": at[0], "lat": at[1], "accuracy_m": 5},
            },
        )
        values = {"created_at": now() - ago}
        if status:
            values["status"] = status
        if into is not None:
            values["merged_into_id"] = into.id
        session.execute(update(Tip).where(Tip.id == row.id).values(**values))
        session.commit()
        return row

    return make


def features(client, token_for, user, path="/api/v1/grid/tips", **args):
    response = client.get(path, query_string=args, headers=token_for(user))
    assert response.status_code == 200, response.json
    assert response.mimetype == "application/geo+json"
    return {f["properties"]["cell_id"]: f["properties"] for f in response.json["features"]}


def test_counts_per_cell_category_and_status_are_right(tip, client, token_for, staff, area):
    first = tip("traffic")
    for _ in range(2):
        tip("traffic")
    tip("fire_hazard", status="resolved")
    tip("traffic", at=OTHER)
    tip("traffic", status="merged", into=first)  # a duplicate of another: never counted
    cells = features(client, token_for, staff, cells="admin")
    home = cells[str(area(f"{COMMUNITY}-G005").id)]
    assert home["total"] == 4
    assert home["by_category"] == {"traffic": 3, "fire_hazard": 1}
    assert home["by_status"] == {"submitted": 3, "resolved": 1}
    assert home["open"] == 3
    assert cells[str(area(f"{COMMUNITY}-G008").id)]["total"] == 1
    hexes = features(client, token_for, staff, cells="hex", resolution=9)
    assert hexes[h3.latlng_to_cell(HOME[1], HOME[0], 9)]["total"] == 4


def test_a_category_made_after_the_process_remembered_them_is_counted(
    tip, client, token_for, staff, area, session
):
    """The codes of the counts per category are remembered by the process (one round trip
    less per aggregate): a category made since shows as soon as a tip has it."""
    tip("traffic")
    features(client, token_for, staff, cells="admin")  # the process knows today's codes
    session.add(TipCategory(code="drone_sighting", name="无人机", name_en="Drone sighting"))
    session.commit()
    tip("drone_sighting")
    home = features(client, token_for, staff, cells="admin")[str(area(f"{COMMUNITY}-G005").id)]
    assert home["by_category"] == {"traffic": 1, "drone_sighting": 1}
    assert home["total"] == 2


def test_grid_staff_see_only_their_cells(tip, client, token_for, create_user):
    tip("traffic")
    elsewhere = create_user(roles=["grid_staff"], jurisdiction=["110105002000"])
    assert features(client, token_for, elsewhere, cells="admin") == {}
    liaison = create_user(roles=["police_liaison"], jurisdiction=["110105001000"])
    assert len(features(client, token_for, liaison, cells="hex")) == 1
    volunteer = create_user(roles=["volunteer"])
    assert client.get("/api/v1/grid/tips", headers=token_for(volunteer)).status_code == 403


def test_the_trend_compares_windows_of_equal_length(tip, client, token_for, staff):
    tip(ago=dt.timedelta(days=2))  # this window (7 days)
    tip(ago=dt.timedelta(days=3))
    tip(ago=dt.timedelta(days=9))  # the previous 7 days
    tip(ago=dt.timedelta(days=20))  # older: in neither
    cell = h3.latlng_to_cell(HOME[1], HOME[0], 8)
    props = features(
        client,
        token_for,
        staff,
        cells="hex",
        **{"from": (now() - dt.timedelta(days=7)).isoformat()},
    )[cell]
    assert props["total"] == 2
    assert props["change"] == {"previous": 1, "delta": 1, "ratio": 2.0}


def test_an_unchanged_aggregate_answers_304(tip, client, token_for, staff):
    tip()
    args = {"cells": "admin", "to": now().isoformat()}
    first = client.get("/api/v1/grid/tips", query_string=args, headers=token_for(staff))
    etag = first.headers["ETag"]
    again = client.get(
        "/api/v1/grid/tips", query_string=args, headers={**token_for(staff), "If-None-Match": etag}
    )
    assert again.status_code == 304 and again.data == b""
    tip()
    changed = client.get(
        "/api/v1/grid/tips", query_string=args, headers={**token_for(staff), "If-None-Match": etag}
    )
    assert changed.status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/grid/tips", "/api/v1/grid/hotspots"])
def test_the_default_window_holds_still_for_a_minute(tip, client, token_for, staff, path):
    if now().second >= 58:  # both requests inside one minute
        time.sleep(2.5)
    tip()
    first = client.get(path, query_string={"cells": "admin"}, headers=token_for(staff))
    etag = first.headers["ETag"]
    again = client.get(
        path, query_string={"cells": "admin"}, headers={**token_for(staff), "If-None-Match": etag}
    )
    assert again.status_code == 304
    if path.endswith("/tips"):
        window = first.get_json()["window"]
        assert dt.datetime.fromisoformat(window["to"]) > now()  # the tip just sent counts
        assert dt.datetime.fromisoformat(window["to"]).second == 0


def test_a_spike_against_a_quiet_baseline_is_a_hotspot(tip, client, token_for, staff):
    for days in (1, 2, 3, 4, 5, 6):
        tip(ago=dt.timedelta(days=days, hours=1))
    tip(at=OTHER, ago=dt.timedelta(days=30))  # quiet elsewhere
    for week in range(1, 9):  # steady: one a week in G005's neighbour hex
        tip(at=OTHER, ago=dt.timedelta(days=7 * week + 1))
    tip(at=OTHER, ago=dt.timedelta(days=1))
    spots = features(
        client, token_for, staff, path="/api/v1/grid/hotspots", cells="hex", resolution=9
    )
    home = h3.latlng_to_cell(HOME[1], HOME[0], 9)
    assert list(spots) == [home]
    assert spots[home]["recent"] == 6 and spots[home]["rank"] == 1
    assert spots[home]["p_value"] < 0.01


def test_risk_against_coverage_ranks_unwatched_clues_first(
    tip, client, token_for, staff, create_user
):
    for _ in range(3):
        tip(ago=dt.timedelta(hours=5))
        tip(at=OTHER, ago=dt.timedelta(hours=5))
    walker = create_user(roles=["volunteer"], home=COMMUNITY)
    headers = token_for(walker)
    started = (now() - dt.timedelta(hours=3)).isoformat()
    patrol = client.post(
        "/api/v1/patrols", json={"kind": "walk_along", "started_at": started}, headers=headers
    ).json
    t0 = now() - dt.timedelta(hours=2)
    fixes = [item(t0 + dt.timedelta(minutes=5 * n), lon=east(3 * n)) for n in range(10)]
    client.post(f"/api/v1/patrols/{patrol['id']}/checkins", json={"items": fixes}, headers=headers)
    ranked = features(
        client, token_for, staff, path="/api/v1/grid/risk-coverage", cells="hex", resolution=9
    )
    home, other = h3.latlng_to_cell(HOME[1], HOME[0], 9), h3.latlng_to_cell(OTHER[1], OTHER[0], 9)
    assert ranked[other]["rank"] < ranked[home]["rank"]
    assert ranked[home]["patrol_minutes"] == 45.0 and ranked[other]["patrol_minutes"] == 0
    assert ranked[other]["gap"] > 0 > ranked[home]["gap"]


def test_a_cells_series_has_every_day(tip, client, token_for, staff):
    tip(ago=dt.timedelta(days=1, hours=2))
    tip(ago=dt.timedelta(days=1, hours=3))
    cell = h3.latlng_to_cell(HOME[1], HOME[0], 9)
    response = client.get(
        f"/api/v1/grid/tips/{cell}/series",
        query_string={"from": (now() - dt.timedelta(days=5)).isoformat()},
        headers=token_for(staff),
    )
    assert response.status_code == 200
    points = response.json["points"]
    assert len(points) in (5, 6) and sum(p["count"] for p in points) == 2
    assert (
        client.get("/api/v1/grid/tips/not-a-cell/series", headers=token_for(staff)).status_code
        == 404
    )


def test_bad_arguments_are_422(client, token_for, staff):
    for path, args in (
        ("/api/v1/grid/tips", {"cells": "squares"}),
        ("/api/v1/grid/tips", {"resolution": 3}),
        ("/api/v1/grid/hotspots", {"window": "7w"}),
        ("/api/v1/public/heatmap", {}),
        ("/api/v1/public/heatmap", {"bbox": "116,39,118,41"}),
    ):
        response = client.get(path, query_string=args, headers=token_for(staff))
        assert response.status_code == 422, (path, args)
        assert response.mimetype == "application/problem+json"


BBOX = "116.40,39.85,116.52,39.95"


def heatmap(client):
    response = client.get("/api/v1/public/heatmap", query_string={"bbox": BBOX})
    assert response.status_code == 200
    return {f["properties"]["cell_id"]: f["properties"]["count"] for f in response.json["features"]}


def test_the_public_heatmap_publishes_a_cell_from_k_distinct_reporters(
    app, tip, client, create_user
):
    k = app.config["HEATMAP_MIN_REPORTERS"]
    cell = h3.latlng_to_cell(HOME[1], HOME[0], 7)
    reporters = [create_user(roles=["volunteer"]) for _ in range(k)]
    for reporter in reporters[:-1]:
        tip(reporter=reporter)
    assert cell not in heatmap(client)
    tip(reporter=reporters[-1])
    assert heatmap(client)[cell] == k
    tip(category="suspicious_person_vehicle", reporter=reporters[0])  # about people: never public
    assert heatmap(client)[cell] == k


def reporters_per_cell(session, k_window_days=30):
    """The oracle: distinct named reporters per coarse cell, from the tips' own positions
    (H3 computed here, not read from the stored cell columns)."""
    from geoalchemy2.shape import to_shape
    from sqlalchemy import select

    from app.tips.models import PUBLIC_CATEGORIES

    rows = session.execute(
        select(Tip.geom, Tip.reporter_id).where(
            Tip.status != "merged",
            Tip.category_code.in_(sorted(PUBLIC_CATEGORIES)),
            Tip.created_at >= now() - dt.timedelta(days=k_window_days),
        )
    ).all()
    found: dict[str, set] = {}
    for geom, reporter_id in rows:
        point = to_shape(geom)
        cell = h3.latlng_to_cell(point.y, point.x, 7)
        found.setdefault(cell, set())
        if reporter_id is not None:
            found[cell].add(reporter_id)
    return found


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plan=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 6), st.booleans()), min_size=1, max_size=25
    )
)
def test_the_public_heatmap_never_publishes_a_cell_under_k_reporters(
    app, session, client, create_user, plan
):
    """Any mix of tips over three coarse cells from a pool of seven reporters, some anonymous
    (the examples pile up in the test's transaction): every published cell has at least k
    distinct named reporters."""
    k = app.config["HEATMAP_MIN_REPORTERS"]
    places = [HOME, (116.47, 39.93), (116.42, 39.88)]
    pool = [create_user(roles=["volunteer"]) for _ in range(7)]
    for place_index, reporter_index, anonymous in plan:
        lon, lat = places[place_index]
        tips_service.submit(
            session,
            None if anonymous else pool[reporter_index],
            {
                "category": "traffic",
                "description": "x",
                "location": {"lon": lon, "lat": lat, "accuracy_m": 5},
            },
        )
    # An hour ago: the public map is as of the start of the current minute.
    session.execute(
        update(Tip)
        .where(Tip.created_at > now() - dt.timedelta(minutes=50))
        .values(created_at=now() - dt.timedelta(hours=1))
    )
    session.commit()
    truth = reporters_per_cell(session)
    published = heatmap(client)
    for cell in published:
        assert len(truth[cell]) >= k
    assert {c for c, who in truth.items() if len(who) >= k} == set(published)
