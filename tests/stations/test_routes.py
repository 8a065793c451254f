"""The station registry and finding the nearest open one."""

from __future__ import annotations

import datetime as dt

import pytest
from geoalchemy2 import Geography, Geometry

from app.stations import jobs, service
from app.stations.models import Station
from geo.crs import from_wgs84, wgs84_to_gcj02

NANLANG, JIANWAI, CHAOWAI_COMMUNITY = "110105001024", "110105001000", "110105002024"
ALWAYS = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
# A point in 南郎家园 (WGS-84), and others east of it at known distances.
HERE = (116.4604, 39.9075)


def east_of(metres: float) -> tuple[float, float]:
    return HERE[0] + metres / 85_300, HERE[1]  # ~85.3 km per degree of longitude at 39.9° N


@pytest.fixture
def staff(create_user, token_for):
    return token_for(create_user(roles=["grid_staff"], jurisdiction=[JIANWAI]))


@pytest.fixture
def new_station(client, token_for):
    admin = token_for("admin")

    def make(name="骑手驿站", at=HERE, headers=None, **overrides):
        body = {
            "name": name,
            "type": "rider_station",
            "location": {"lon": at[0], "lat": at[1]},
            "amenities": ["charging", "hot_water"],
            "opening_hours": ALWAYS,
            **overrides,
        }
        response = client.post("/api/v1/stations", json=body, headers=headers or admin)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


def nearby(client, **params):
    query = {"lon": HERE[0], "lat": HERE[1], **params}
    response = client.get("/api/v1/stations/nearby", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_a_station_is_created_with_its_area_path(client, new_station, staff, area, session):
    from app.areas.service import resolve_path

    station = new_station(headers=staff)
    path = resolve_path(session, *HERE)
    assert station["subdistrict_id"] == str(area(JIANWAI).id) == str(path.subdistrict_id)
    assert station["community_id"] == str(path.community_id)
    assert station["community_id"] is not None
    assert (station["lon"], station["lat"]) == pytest.approx(HERE)
    assert station["status"] == "active"


def test_a_station_sent_in_gcj02_is_stored_in_wgs84_and_answered_as_asked(client, staff):
    gcj = wgs84_to_gcj02(*HERE)
    body = {
        "name": "AMap pin",
        "type": "volunteer_post",
        "location": {"lon": gcj[0], "lat": gcj[1], "coord_system": "gcj02"},
        "opening_hours": ALWAYS,
    }
    created = client.post("/api/v1/stations?crs=gcj02", json=body, headers=staff).get_json()
    assert (created["lon"], created["lat"]) == pytest.approx(gcj, abs=1e-6)
    stored = client.get(f"/api/v1/stations/{created['id']}").get_json()
    assert (stored["lon"], stored["lat"]) == pytest.approx(HERE, abs=1e-6)


def test_staff_cannot_create_stations_outside_their_jurisdiction(
    client, staff, session, area, ledger
):
    from sqlalchemy import select

    from tests.areas.test_service import centre_of

    elsewhere = centre_of(session, area(CHAOWAI_COMMUNITY))
    body = {
        "name": "朝外的驿站",
        "type": "rider_station",
        "location": {"lon": elsewhere[0], "lat": elsewhere[1]},
        "opening_hours": ALWAYS,
    }
    ledger.mark()
    response = client.post("/api/v1/stations", json=body, headers=staff)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert ledger.changes() == []
    assert session.scalars(select(Station.id).where(Station.name == "朝外的驿站")).all() == []


@pytest.mark.parametrize(
    "hours",
    [
        {"mon": [["08:00", "25:00"]]},
        {"monday": [["08:00", "20:00"]]},
        {"mon": [["24:00", "08:00"]]},
    ],
)
def test_bad_opening_hours_are_refused(client, staff, hours):
    body = {
        "name": "x",
        "type": "rider_station",
        "location": {"lon": HERE[0], "lat": HERE[1]},
        "opening_hours": hours,
    }
    response = client.post("/api/v1/stations", json=body, headers=staff)
    assert response.status_code == 422
    assert "/opening_hours" in {e["pointer"] for e in response.get_json()["errors"]}


def test_nearby_orders_by_distance_and_applies_every_filter(client, new_station):
    far = new_station("far", east_of(900))
    near = new_station("near", east_of(100), type="volunteer_post", amenities=["repair_kit"])
    middle = new_station("middle", east_of(400), amenities=["charging", "hot_water", "aed"])
    new_station("outside the radius", east_of(1200))
    ours = {far["id"], near["id"], middle["id"]}

    def found(**params):  # the demo data has stations here too: look at ours only
        return [s for s in nearby(client, radius_m=1000, limit=50, **params) if s["id"] in ours]

    assert [s["name"] for s in found()] == ["near", "middle", "far"]
    everything = nearby(client, radius_m=1000, limit=50)
    distances = [s["distance_m"] for s in everything]
    assert distances == sorted(distances)
    assert max(distances) <= 1000
    assert {s["id"]: s["distance_m"] for s in everything}[near["id"]] == pytest.approx(100, abs=5)
    assert [s["id"] for s in found(type="rider_station")] == [middle["id"], far["id"]]
    assert {s["type"] for s in nearby(client, radius_m=1000, type="volunteer_post")} == {
        "volunteer_post"
    }
    assert [s["id"] for s in nearby(client, radius_m=1000, amenity=["charging", "aed"])] == [
        middle["id"]
    ]
    assert [s["id"] for s in nearby(client, radius_m=1000, amenity="repair_kit")] == [near["id"]]
    assert len(nearby(client, radius_m=1000, limit=2)) == 2


def test_open_now_filters_out_stations_closed_today(client, new_station):
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    new_station("closed today", east_of(50), hours_exceptions=[{"date": today, "closed": True}])
    open_one = new_station("always open", east_of(60))
    found = nearby(client, radius_m=500)
    assert {s["name"]: s["open_now"] for s in found}["closed today"] is False
    open_only = nearby(client, radius_m=500, open_now="true")
    assert open_only[0]["id"] == open_one["id"]
    assert "closed today" not in {s["name"] for s in open_only}


def test_open_now_holds_across_midnight(session, client, new_station):
    late = new_station("night shift", east_of(30), opening_hours={"fri": [["22:00", "06:00"]]})
    beijing = dt.timezone(dt.timedelta(hours=8))
    friday = dt.date(2026, 11, 20)  # a Friday
    station = session.get(Station, late["id"])
    service.refresh_open_periods(session, [station], today=friday)

    def open_at(local: dt.datetime) -> bool:
        rows = service.nearby(session, *HERE, radius_m=500, limit=10, at=local)
        return {row.Station.name: row.open_now for row in rows}["night shift"]

    assert open_at(dt.datetime(2026, 11, 20, 21, 59, tzinfo=beijing)) is False
    assert open_at(dt.datetime(2026, 11, 20, 23, 0, tzinfo=beijing)) is True
    assert open_at(dt.datetime(2026, 11, 21, 5, 59, tzinfo=beijing)) is True
    assert open_at(dt.datetime(2026, 11, 21, 6, 0, tzinfo=beijing)) is False


def test_nearby_answers_geojson_when_asked(client, new_station):
    new_station("geo", east_of(20))
    response = client.get(
        "/api/v1/stations/nearby",
        query_string={"lon": HERE[0], "lat": HERE[1], "crs": "gcj02"},
        headers={"Accept": "application/geo+json"},
    )
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    collection = response.get_json()
    assert collection["type"] == "FeatureCollection"
    first = collection["features"][0]
    assert first["geometry"]["type"] == "Point"
    assert {"name", "distance_m", "open_now", "amenities"} <= set(first["properties"])
    expected = from_wgs84(*east_of(20), "gcj02")
    assert first["geometry"]["coordinates"] == pytest.approx(list(expected), abs=1e-6)


def test_the_map_lists_active_stations_in_a_bbox_without_a_token(client, new_station, staff):
    inside = new_station("in the box", east_of(10))
    closed = new_station("closed", east_of(20))
    assert client.post(f"/api/v1/stations/{closed['id']}/close", headers=staff).status_code == 200
    bbox = f"{HERE[0] - 0.01},{HERE[1] - 0.01},{HERE[0] + 0.01},{HERE[1] + 0.01}"
    page = client.get(f"/api/v1/stations?bbox={bbox}&page_size=100").get_json()
    ids = {s["id"] for s in page["items"]}
    assert inside["id"] in ids and closed["id"] not in ids
    assert closed["id"] not in {s["id"] for s in nearby(client, radius_m=500)}
    assert client.get(f"/api/v1/stations/{closed['id']}").status_code == 404
    assert client.get(f"/api/v1/stations/{closed['id']}", headers=staff).status_code == 200


def stored_station(session, station_id):
    session.expire_all()
    return session.get(Station, station_id)


def test_edits_need_the_current_etag(client, session, new_station, staff):
    station = new_station()
    url = f"/api/v1/stations/{station['id']}"
    etag = client.get(url).headers["ETag"]
    original = stored_station(session, station["id"]).capacity
    assert original != 8
    missing = client.patch(url, json={"capacity": 8}, headers=staff)
    assert missing.status_code == 428 and missing.mimetype == "application/problem+json"
    stale = {**staff, "If-Match": '"not-the-etag"'}
    refused = client.patch(url, json={"capacity": 8}, headers=stale)
    assert refused.status_code == 412 and refused.mimetype == "application/problem+json"
    assert stored_station(session, station["id"]).capacity == original
    assert client.get(url).headers["ETag"] == etag  # nothing changed
    fresh = {**staff, "If-Match": etag}
    updated = client.patch(url, json={"capacity": 8, "verified": True}, headers=fresh)
    assert updated.status_code == 200
    assert updated.get_json()["capacity"] == 8
    assert updated.get_json()["last_verified_at"]
    assert updated.headers["ETag"] != etag
    stored = stored_station(session, station["id"])
    assert stored.capacity == 8 and stored.last_verified_at is not None
    # the old ETag is stale now
    assert client.patch(url, json={"capacity": 9}, headers=fresh).status_code == 412
    assert stored_station(session, station["id"]).capacity == 8


def test_staff_of_another_jurisdiction_cannot_edit(
    client, session, new_station, create_user, token_for, ledger
):
    station = new_station()
    url = f"/api/v1/stations/{station['id']}"
    etag = client.get(url).headers["ETag"]
    other = token_for(create_user(roles=["grid_staff"], jurisdiction=[CHAOWAI_COMMUNITY]))
    ledger.mark()
    response = client.patch(url, json={"capacity": 1}, headers={**other, "If-Match": etag})
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    closing = client.post(f"{url}/close", headers=other)
    assert closing.status_code == 404 and closing.mimetype == "application/problem+json"
    assert ledger.changes() == []
    stored = stored_station(session, station["id"])
    assert (stored.capacity, stored.status) == (station["capacity"], "active")
    assert client.get(url).headers["ETag"] == etag


def test_nearby_refuses_bad_input(client):
    for query in (
        "lon=200&lat=39.9",
        "lon=116.4&lat=39.9&radius_m=50000",
        "lon=116.4&lat=39.9&limit=500",
        "lon=116.4&lat=39.9&amenity=jacuzzi",
    ):
        response = client.get(f"/api/v1/stations/nearby?{query}")
        assert response.status_code == 422, query
        assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "bbox", ["1,2,3", "a,b,c,d", "116.5,39.9,116.4,40.0", "0,0,200,1", ".,.,.,."]
)
def test_a_bad_bbox_is_refused(client, bbox):
    response = client.get("/api/v1/stations", query_string={"bbox": bbox})
    assert response.status_code == 422
    assert "/bbox" in {e["pointer"] for e in response.get_json()["errors"]}


def test_the_demo_has_real_service_centres_and_marked_generated_stations(session):
    from sqlalchemy import func, select

    rows = session.execute(
        select(Station.type, Station.generated, func.count())
        .where(Station.external_ref.like("demo:%"))
        .group_by(Station.type, Station.generated)
    ).all()
    counts = {(kind, generated): n for kind, generated, n in rows}
    assert counts[("community_service_centre", False)] == 298  # the communities with a point
    assert counts[("rider_station", True)] == 200
    assert counts[("volunteer_post", True)] == 100
    generated_names = session.scalars(select(Station.name).where(Station.generated)).all()
    assert all("演示生成" in name for name in generated_names)
    unlocated = session.scalar(
        select(func.count()).where(
            Station.external_ref.like("demo:%"), Station.community_id.is_(None)
        )
    )
    assert unlocated == 0


def test_generated_demo_stations_of_different_kinds_stand_apart(session):
    from sqlalchemy import func, select

    shared = session.scalar(
        select(func.count())
        .select_from(Station)
        .where(Station.generated)
        .group_by(func.ST_AsBinary(Station.geom))
        .having(func.count() > 1)
        .limit(1)
    )
    assert shared is None


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"amenities": ["aed"]},
        {"types": ["volunteer_post"]},
        {"open_now": True},
        {"amenities": ["umbrella"]},
    ],
)
def test_both_nearby_plans_give_the_same_answer(session, new_station, monkeypatch, filters):
    new_station("aed here", east_of(300), amenities=["aed"])
    new_station("post here", east_of(700), type="volunteer_post")

    def answer(fast_scan):
        monkeypatch.setattr(service, "NEARBY_FAST_SCAN", fast_scan)
        rows = service.nearby(session, *HERE, radius_m=3000, limit=5, **filters)
        return [(row.Station.id, round(row.distance_m, 3)) for row in rows]

    exact = answer(100_000)  # the fast path reads every station: exact by construction
    assert answer(2) == exact  # the fast path cannot decide: the bounded query answers
    assert answer(50) == exact


def place(session, metres: float, azimuth_deg: float) -> tuple[float, float]:
    """The point `metres` from HERE on the spheroid, at a compass bearing."""
    from sqlalchemy import func, select

    projected = func.ST_Project(
        func.ST_SetSRID(func.ST_MakePoint(*HERE), 4326).cast(Geography),
        metres,
        func.radians(azimuth_deg),
    ).cast(Geometry)
    return session.execute(select(func.ST_X(projected), func.ST_Y(projected))).one()


def test_nearest_first_is_by_the_distance_answered(client, session, new_station):
    north = new_station("north 1000", place(session, 1000, 0))
    east = new_station("east 1003", place(session, 1003, 90))
    ours = {north["id"], east["id"]}
    found = [s for s in nearby(client, radius_m=1100, limit=50) if s["id"] in ours]
    assert [s["name"] for s in found] == ["north 1000", "east 1003"]
    assert [s["distance_m"] for s in found] == pytest.approx([1000, 1003], abs=0.5)
    everything = [s["distance_m"] for s in nearby(client, radius_m=1100, limit=50)]
    assert everything == sorted(everything)


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_both_plans_agree_with_plain_sql(session, new_station, monkeypatch, limit):
    from sqlalchemy import func, select

    for n, (metres, bearing) in enumerate([(1000, 0), (1003, 90), (998, 180), (1005, 270)]):
        new_station(f"ring {n}", place(session, metres, bearing))
    here = func.ST_SetSRID(func.ST_MakePoint(*HERE), 4326).cast(Geography)
    distance = func.ST_Distance(Station.geog, here)
    plain = (
        session.execute(
            select(Station.id)
            .where(Station.status == "active", distance <= 1100)
            .order_by(distance, Station.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    for fast_scan in (2, 5, 100_000):
        monkeypatch.setattr(service, "NEARBY_FAST_SCAN", fast_scan)
        rows = service.nearby(session, *HERE, radius_m=1100, limit=limit)
        assert [row.Station.id for row in rows] == plain, fast_scan


def test_a_closed_station_can_be_reopened(client, new_station, staff):
    station = new_station("reopened", east_of(15))
    url = f"/api/v1/stations/{station['id']}"
    client.post(f"{url}/close", headers=staff)
    etag = client.get(url, headers=staff).headers["ETag"]
    response = client.patch(url, json={"status": "active"}, headers={**staff, "If-Match": etag})
    assert response.status_code == 200
    assert station["id"] in {s["id"] for s in nearby(client, radius_m=200, open_now="true")}


def test_an_unknown_team_is_a_422(client, staff, ledger):
    ledger.mark()
    body = {
        "name": "x",
        "type": "rider_station",
        "location": {"lon": HERE[0], "lat": HERE[1]},
        "opening_hours": ALWAYS,
        "team_id": "00000000-0000-4000-8000-000000000000",
    }
    response = client.post("/api/v1/stations", json=body, headers=staff)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "/team_id" in {e["pointer"] for e in response.get_json()["errors"]}
    assert ledger.changes() == []


def test_the_daily_job_rolls_the_open_periods_forward(app, session, new_station, monkeypatch):
    import datetime as dt

    from sqlalchemy import func, select

    from app.core import jobs as jobs_module
    from app.stations.models import StationOpenPeriod

    station = new_station("rolled", east_of(25))
    monkeypatch.setattr(jobs_module, "_worker_app", app)
    later = dt.datetime(2030, 1, 1, 16, 5, tzinfo=dt.UTC)  # 00:05 on 2 January in Beijing
    assert jobs.roll_open_periods(timestamp=int(later.timestamp())) >= 1
    last_end = session.scalar(
        select(func.max(func.upper(StationOpenPeriod.during))).where(
            StationOpenPeriod.station_id == station["id"]
        )
    )
    assert last_end >= dt.datetime(2030, 1, 15, tzinfo=dt.UTC)
