"""Station utilisation: QR-code visits, per-station statistics, the jurisdiction summary."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.stations.models import StationVisit
from tests.stations.test_routes import ALWAYS, HERE, east_of

JIANWAI, CHAOWAI_COMMUNITY = "110105001000", "110105002024"
BEIJING = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def staff(create_user, token_for):
    return token_for(create_user(roles=["grid_staff"], jurisdiction=[JIANWAI]))


@pytest.fixture
def station(client, staff):
    body = {
        "name": "建外骑手驿站",
        "type": "rider_station",
        "location": {"lon": HERE[0], "lat": HERE[1]},
        "opening_hours": ALWAYS,
    }
    created = client.post("/api/v1/stations", json=body, headers=staff).get_json()
    code = client.get(f"/api/v1/stations/{created['id']}/visit-code", headers=staff).get_json()
    return {**created, "code": code["code"], "qr_payload": code["qr_payload"]}


def visit(client, station, code=None, **kwargs):
    return client.post(
        f"/api/v1/stations/{station['id']}/visits",
        json={"code": code or station["code"]},
        **kwargs,
    )


def test_a_scan_records_a_visit_without_personal_data(client, session, station):
    response = visit(client, station, environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert response.status_code == 201
    stored = session.get(StationVisit, response.get_json()["id"])
    assert stored.volunteer_id is None
    assert "203.0.113.5" not in " ".join(str(v) for v in vars(stored).values())
    assert station["qr_payload"].endswith(station["code"])


def test_a_signed_in_volunteers_visit_keeps_their_id(
    client, session, station, create_user, token_for
):
    volunteer = create_user()
    response = visit(client, station, headers=token_for(volunteer))
    assert session.get(StationVisit, response.get_json()["id"]).volunteer_id == volunteer.id


def test_a_wrong_code_records_nothing(client, session, station):
    response = visit(client, station, code="guessed")
    assert response.status_code == 422
    assert session.scalars(select(StationVisit)).all() == []


def test_only_staff_of_the_area_read_the_visit_code(client, station, create_user, token_for):
    other = token_for(create_user(roles=["grid_staff"], jurisdiction=[CHAOWAI_COMMUNITY]))
    assert (
        client.get(f"/api/v1/stations/{station['id']}/visit-code", headers=other).status_code == 404
    )
    public = client.get(f"/api/v1/stations/{station['id']}").get_json()
    assert station["code"] not in str(public)


def add_visits(session, station_id, *local_times):
    for when in local_times:
        session.add(StationVisit(station_id=station_id, visited_at=when))
    session.commit()


def test_stats_count_visits_per_local_day_and_hour(client, session, station, staff):
    add_visits(
        session,
        station["id"],
        dt.datetime(2026, 11, 20, 23, 30, tzinfo=BEIJING),  # 15:30 UTC on the 20th
        dt.datetime(2026, 11, 21, 0, 30, tzinfo=BEIJING),  # still the 20th in UTC
        dt.datetime(2026, 11, 21, 8, 10, tzinfo=BEIJING),
        dt.datetime(2026, 11, 21, 8, 50, tzinfo=BEIJING),
        dt.datetime(2026, 11, 23, 8, 0, tzinfo=BEIJING),  # outside the period
    )
    response = client.get(
        f"/api/v1/stations/{station['id']}/stats?from=2026-11-20&to=2026-11-22", headers=staff
    )
    assert response.status_code == 200
    stats = response.get_json()
    assert stats["total"] == 4
    assert stats["by_day"] == [
        {"date": "2026-11-20", "visits": 1},
        {"date": "2026-11-21", "visits": 3},
    ]
    by_hour = {h["hour"]: h["visits"] for h in stats["by_hour"]}
    assert (by_hour[23], by_hour[0], by_hour[8], by_hour[12]) == (1, 1, 2, 0)
    assert len(stats["by_hour"]) == 24


def test_the_summary_covers_the_jurisdiction_and_ranks_busy_hours(
    client, session, station, staff, create_user, token_for, new_station_admin
):
    second = new_station_admin(east_of(-150))
    add_visits(
        session,
        station["id"],
        dt.datetime(2026, 11, 21, 8, 0, tzinfo=BEIJING),
        dt.datetime(2026, 11, 21, 8, 5, tzinfo=BEIJING),
        dt.datetime(2026, 11, 21, 19, 0, tzinfo=BEIJING),
    )
    add_visits(session, second["id"], dt.datetime(2026, 11, 22, 8, 30, tzinfo=BEIJING))
    summary = client.get(
        "/api/v1/stations/visits/summary?from=2026-11-21&to=2026-11-22", headers=staff
    ).get_json()
    rows = [(r["name"], r["date"], r["visits"]) for r in summary["items"]]
    assert ("建外骑手驿站", "2026-11-21", 3) in rows
    assert (second["name"], "2026-11-22", 1) in rows
    assert summary["busiest_hours"][0] == {"hour": 8, "visits": 3}
    other = token_for(create_user(roles=["grid_staff"], jurisdiction=[CHAOWAI_COMMUNITY]))
    theirs = client.get(
        "/api/v1/stations/visits/summary?from=2026-11-21&to=2026-11-22", headers=other
    ).get_json()
    assert theirs["items"] == [] and theirs["busiest_hours"] == []


@pytest.fixture
def new_station_admin(client, token_for):
    admin = token_for("admin")

    def make(at):
        body = {
            "name": "第二驿站",
            "type": "volunteer_post",
            "location": {"lon": at[0], "lat": at[1]},
            "opening_hours": ALWAYS,
        }
        return client.post("/api/v1/stations", json=body, headers=admin).get_json()

    return make


@pytest.mark.parametrize(
    "query", ["from=2026-11-22&to=2026-11-20", "from=2025-01-01&to=2026-11-20", "to=2026-11-20"]
)
def test_a_bad_period_is_refused(client, station, staff, query):
    response = client.get(f"/api/v1/stations/{station['id']}/stats?{query}", headers=staff)
    assert response.status_code == 422


def test_visits_are_limited_per_client(app, client, station, monkeypatch):
    monkeypatch.setitem(app.config, "VISIT_RATE_LIMIT", "2 per minute")
    scanner = {"REMOTE_ADDR": "192.0.2.77"}
    statuses = [visit(client, station, environ_base=scanner).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
