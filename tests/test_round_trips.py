"""Round trips are a budget: the hot paths wait for PostgreSQL at most twice per request.

Counted on the wire (tests/round_trips.py: libpq's trace, so BEGIN, COMMIT and pool pings count
like any statement) on a warm process: the application on a database of its own (these requests
commit for real, so they cannot run inside the suite's rolled-back test transaction), its pool
and caches warmed by one request of the same kind first.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from app.auth import identity_cache
from app.core.db import decide_transactions
from app.demo import DEMO_PASSWORD
from app.extensions import db
from tests.conftest import as_app, make_app
from tests.live import demo_database
from tests.round_trips import RoundTrips

BUDGET = 2
STAFF = "13800000002"  # the demo community admin of 建外 (110105001000)
VOLUNTEER = "13800000005"
JIANWAI = (116.4466, 39.9050)


@pytest.fixture(scope="module")
def live_app() -> Iterator:
    """The application on a throw-away database, migrated and demo-loaded, with its own pool
    and, as in production, the caller's identity cached by the process (app/auth/
    identity_cache.py; the suite's other apps run without it)."""
    with demo_database() as owner_url:
        app = make_app(owner_url, AUTH_CACHE_SECONDS=60)
        yield app
        with app.app_context():
            identity_cache.close(db.engine.url)
            db.engine.dispose()


@pytest.fixture(scope="module")
def trips(live_app) -> Iterator[RoundTrips]:
    with live_app.app_context():  # not kept: each request must have its own app context
        engine = db.engine
    counter = RoundTrips(engine)
    yield counter
    counter.close()


@pytest.fixture(scope="module")
def http(live_app):
    return live_app.test_client()


def _bearer(http, phone: str) -> dict[str, str]:
    answer = http.post("/api/v1/auth/login", json={"phone": phone, "password": DEMO_PASSWORD})
    assert answer.status_code == 200, answer.json
    return {"Authorization": f"Bearer {answer.json['access_token']}"}


@pytest.fixture(scope="module")
def staff(http) -> dict[str, str]:
    return _bearer(http, STAFF)


@pytest.fixture(scope="module")
def patrol(http) -> tuple[dict[str, str], str]:
    headers = _bearer(http, VOLUNTEER)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    answer = http.post(
        "/api/v1/patrols",
        json={"kind": "walk_along", "started_at": started.isoformat()},
        headers=headers,
    )
    assert answer.status_code == 201, answer.json
    return headers, answer.json["id"]


def _fixes(count: int, start: dt.datetime) -> list[dict]:
    return [
        {
            "client_id": str(uuid.uuid4()),
            "recorded_at": (start + dt.timedelta(seconds=n)).isoformat(),
            "location": {"lon": JIANWAI[0] + 0.00001 * n, "lat": JIANWAI[1], "accuracy_m": 8},
        }
        for n in range(count)
    ]


def _measured(trips: RoundTrips, request) -> tuple:
    request()  # warm: pool, caches, prepared state of this kind of request
    with trips.during() as exchanges:
        answer = request()
    print(f"{request.__name__}: {exchanges}")  # the figures, with -s
    return answer, exchanges


# The fixes of every test follow the previous ones (a batch reaching back before the patrol's
# latest fix reads stored fixes for its speed checks: a round trip of its own, on purpose).
_clock = {"at": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=90)}


def _checkins(http, patrol, count: int):
    headers, patrol_id = patrol
    state = _clock

    def send():
        items = _fixes(count, state["at"])
        state["at"] += dt.timedelta(seconds=count + 1)
        answer = http.post(
            f"/api/v1/patrols/{patrol_id}/checkins", json={"items": items}, headers=headers
        )
        assert answer.status_code == 200, answer.json
        assert [i["outcome"] for i in answer.json["items"]] == ["accepted"] * count
        return answer

    return send


def test_a_batch_of_50_checkins(trips, http, patrol):
    _answer, exchanges = _measured(trips, _checkins(http, patrol, 50))
    assert exchanges.trips <= BUDGET, str(exchanges)


def test_a_single_checkin(trips, http, patrol):
    _answer, exchanges = _measured(trips, _checkins(http, patrol, 1))
    assert exchanges.trips <= BUDGET, str(exchanges)


def test_a_staff_list(trips, http, staff):
    def listing():
        answer = http.get("/api/v1/tips?status=submitted&page_size=20", headers=staff)
        assert answer.status_code == 200, answer.json
        return answer

    answer, exchanges = _measured(trips, listing)
    assert "total" in answer.json
    assert exchanges.trips <= BUDGET, str(exchanges)


def test_a_grid_aggregate(trips, http, staff):
    def aggregate():
        answer = http.get("/api/v1/grid/tips", headers=staff)
        assert answer.status_code == 200, answer.json
        return answer

    _answer, exchanges = _measured(trips, aggregate)
    assert exchanges.trips <= BUDGET, str(exchanges)


def test_nearby_stations(trips, http):
    def nearby():
        answer = http.get(f"/api/v1/stations/nearby?lon={JIANWAI[0]}&lat={JIANWAI[1]}")
        assert answer.status_code == 200, answer.json
        return answer

    _answer, exchanges = _measured(trips, nearby)
    assert exchanges.trips <= BUDGET, str(exchanges)


def test_the_counter_sees_what_statement_events_miss(trips, live_app):
    """BEGIN and COMMIT are round trips the code never wrote: the counter must see them, or
    the budgets above would prove nothing."""
    with live_app.app_context(), trips.during() as exchanges, db.engine.begin() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert exchanges.trips == 3, exchanges
    assert [s.split()[0] for s in exchanges.sent] == ["BEGIN", "SELECT", "COMMIT"]


def _drop_the_apps_connections(owner_url: str) -> int:
    """What a database restart does to the pool: every server process of the app ends."""
    engine = sa.create_engine(owner_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND usename = :role"
                ),
                {"role": sa.engine.make_url(as_app(owner_url)).username},
            ).scalar_one()
    finally:
        engine.dispose()


def test_without_a_ping_a_dropped_connection_costs_a_read_nothing_and_a_write_one_retry(
    live_app, http, staff, patrol
):
    """No ping before each checkout: after a restart a read is run again on a fresh
    connection (the caller sees nothing); a write is answered 503 with Retry-After: 1, and
    sent again it is stored once."""
    owner_url = live_app.config["MIGRATION_DATABASE_URI"]
    http.get("/api/v1/tips", headers=staff)  # the pool holds a connection
    assert _drop_the_apps_connections(owner_url) >= 1
    answer = http.get("/api/v1/tips", headers=staff)
    assert answer.status_code == 200, answer.json

    send = _checkins(http, patrol, 1)
    send()
    assert _drop_the_apps_connections(owner_url) >= 1
    headers, patrol_id = patrol
    items = _fixes(1, _clock["at"])
    first = http.post(
        f"/api/v1/patrols/{patrol_id}/checkins", json={"items": items}, headers=headers
    )
    assert first.status_code == 503, first.json
    assert first.headers["Retry-After"] == "1"
    assert first.json["type"].endswith(":database-unavailable")
    again = http.post(
        f"/api/v1/patrols/{patrol_id}/checkins", json={"items": items}, headers=headers
    )
    assert again.status_code == 200, again.json
    assert again.json["items"][0]["outcome"] in ("accepted", "duplicate")
    with live_app.app_context():
        stored = db.session.execute(
            sa.text("SELECT count(*) FROM checkins WHERE client_id = :id"),
            {"id": items[0]["client_id"]},
        ).scalar_one()
    assert stored == 1


def test_acknowledged_writes_stay_durable(live_app, http, patrol):
    """Fewer round trips, not weaker commits: the connections that acknowledge check-ins and
    tips keep the server's `synchronous_commit` (the app never turns it off; the suite's
    throw-away cluster does, server-wide, in scripts/db.sh)."""
    _checkins(http, patrol, 1)()
    setting = sa.text("SELECT source FROM pg_settings WHERE name = 'synchronous_commit'")
    for method, path in (("POST", "/api/v1/patrols/x/checkins"), ("GET", "/api/v1/tips")):
        with live_app.test_request_context(path, method=method):
            decide_transactions()
            assert db.session.execute(setting).scalar_one() in ("default", "configuration file")
            db.session.rollback()
