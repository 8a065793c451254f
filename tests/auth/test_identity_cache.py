"""The caller's identity: one statement on a miss, once per request, and a per-process cache
whose entries are trusted only under the rules of app/auth/identity_cache.py.

The suite's app runs without the cache (AUTH_CACHE_SECONDS=0, tests/conftest.py); the tests of a
warm cache use an app of their own with it on. Its invalidation across processes is tested with
real processes in test_identity_cache_processes.py.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from flask_jwt_extended import decode_token, get_current_user, verify_jwt_in_request

from app.auth import identity_cache
from app.auth.identity_cache import Identity, IdentityCache, Listener
from app.auth.jurisdiction import jurisdiction_of
from app.auth.models import User
from app.auth.service import live_user
from tests.conftest import as_owner
from tests.ops.processes import wait_until
from tests.stations.test_routes import ALWAYS, HERE


def _identity_statements(statements: list[str]) -> list[str]:
    return [s for s in statements if "auth_sessions" in s]


@pytest.fixture
def staff_session(create_user, token_for):
    """A grid_staff user of two areas, and their bearer headers."""
    user = create_user(roles=["grid_staff"], jurisdiction=["110105001024", "110105001025"])
    return user, token_for(user)


def _sid(headers: dict[str, str]) -> str:
    return decode_token(headers["Authorization"].split()[1])["sid"]


# --- one statement, once per request ------------------------------------------------------------


def test_a_token_lookup_is_one_statement_and_the_jurisdiction_needs_none(
    app, session, staff_session, count_queries
):
    user, headers = staff_session
    sid = _sid(headers)
    session.expunge_all()
    with count_queries() as statements:
        loaded = live_user(session, str(user.id), sid)
        scope = jurisdiction_of(loaded)
        codes = sorted(a.code for a in loaded.jurisdiction)
    assert len(statements) == 1, statements
    assert codes == ["110105001024", "110105001025"]
    assert len(scope.area_ids) == 2


def test_the_lookup_runs_once_per_request_on_a_rate_limited_route(
    client, session, create_user, token_for, count_queries
):
    """The visits route's rate-limit key verifies the token, then the view does again."""
    staff = token_for(create_user(roles=["grid_staff"], jurisdiction=["110105001000"]))
    body = {
        "name": "建外骑手驿站",
        "type": "rider_station",
        "location": {"lon": HERE[0], "lat": HERE[1]},
        "opening_hours": ALWAYS,
    }
    created = client.post("/api/v1/stations", json=body, headers=staff)
    assert created.status_code == 201, created.get_json()
    station = created.get_json()["id"]
    code = client.get(f"/api/v1/stations/{station}/visit-code", headers=staff).get_json()["code"]
    volunteer = token_for(create_user())
    with count_queries() as statements:
        response = client.post(
            f"/api/v1/stations/{station}/visits", json={"code": code}, headers=volunteer
        )
    assert response.status_code == 201, response.get_json()
    assert len(_identity_statements(statements)) == 1, statements


# --- the rules, on a clock of our own -----------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


IDENTITY = Identity(user=(("id", uuid.uuid4()),), areas=())
USER, SESSION, OTHER_SESSION = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock) -> IdentityCache:
    cache = IdentityCache(clock=clock)
    cache.listening()
    return cache


def test_an_entry_is_trusted_until_its_seconds_are_up(cache, clock):
    assert cache.put(cache.ticket(), USER, SESSION, IDENTITY, seconds=60)
    clock.now += 59.9
    assert cache.get(USER, SESSION) is IDENTITY
    clock.now += 0.1
    assert cache.get(USER, SESSION) is None
    assert len(cache) == 0


def test_nothing_is_trusted_or_kept_while_the_listener_is_disconnected(cache):
    generation = 1
    cache.put(cache.ticket(), USER, SESSION, IDENTITY, seconds=60)
    cache.lost(generation)
    assert cache.get(USER, SESSION) is None
    assert cache.ticket() is None
    # Back again: what was cached before the loss is gone, not revived.
    cache.listening()
    assert cache.get(USER, SESSION) is None


def test_a_lookup_started_before_the_current_listen_is_not_kept(cache):
    ticket = cache.ticket()
    cache.lost(1)
    cache.listening()  # a notification may have been missed in between
    assert not cache.put(ticket, USER, SESSION, IDENTITY, seconds=60)
    assert cache.get(USER, SESSION) is None


def test_a_lookup_during_which_a_notification_came_is_not_kept(cache):
    ticket = cache.ticket()
    cache.invalidate(str(uuid.uuid4()))
    assert not cache.put(ticket, USER, SESSION, IDENTITY, seconds=60)


def test_a_notification_drops_every_session_of_its_user_and_no_other(cache):
    other_user = uuid.uuid4()
    for user, session in ((USER, SESSION), (USER, OTHER_SESSION), (other_user, SESSION)):
        cache.put(cache.ticket(), user, session, IDENTITY, seconds=60)
    cache.invalidate(str(USER))
    assert cache.get(USER, SESSION) is None
    assert cache.get(USER, OTHER_SESSION) is None
    assert cache.get(other_user, SESSION) is IDENTITY


def test_the_loss_of_an_earlier_connection_does_not_disturb_the_current_one(cache):
    cache.lost(1)
    current = cache.listening()
    cache.lost(current - 1)  # a late report about the old connection
    assert cache.put(cache.ticket(), USER, SESSION, IDENTITY, seconds=60)
    assert cache.get(USER, SESSION) is IDENTITY


# --- a real listener ----------------------------------------------------------------------------


@pytest.fixture
def listened(database_url):
    """A cache with its own listener on the run's database, listening."""
    cache = IdentityCache()
    conninfo = sa.make_url(database_url).set(drivername="postgresql")
    listener = Listener(conninfo.render_as_string(hide_password=False), cache)
    listener.start()
    assert wait_until(lambda: cache.connected, timeout=10) is not None
    yield cache, listener
    listener.stop()


def _owner_engine(database_url: str) -> sa.Engine:
    return sa.create_engine(
        as_owner(database_url), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )


def test_a_notification_reaches_the_listener_and_drops_the_users_entries(listened, database_url):
    cache, _listener = listened
    assert cache.put(cache.ticket(), USER, SESSION, IDENTITY, seconds=60)
    engine = _owner_engine(database_url)
    with engine.connect() as conn:
        conn.execute(sa.select(sa.func.pg_notify(identity_cache.CHANNEL, str(USER))))
    engine.dispose()
    assert wait_until(lambda: cache.get(USER, SESSION) is None, timeout=2, interval=0.01)


def test_a_terminated_listener_is_bypassed_then_listens_again(listened, database_url):
    cache, listener = listened
    cache.put(cache.ticket(), USER, SESSION, IDENTITY, seconds=60)
    first_pid = listener.backend_pid
    engine = _owner_engine(database_url)
    with engine.connect() as conn:
        conn.execute(sa.select(sa.func.pg_terminate_backend(first_pid)))
    engine.dispose()
    # The next lookup reads the socket, finds the connection gone and bypasses the cache.
    assert wait_until(lambda: cache.get(USER, SESSION) is None, timeout=2, interval=0.01)
    assert wait_until(lambda: cache.connected, timeout=10) is not None
    assert listener.backend_pid != first_pid
    assert cache.put(cache.ticket(), USER, SESSION, IDENTITY, seconds=60)
    assert cache.get(USER, SESSION) is IDENTITY


# --- a warm cache in a request ------------------------------------------------------------------


def test_a_warm_cache_answers_without_a_statement(cached_client, staff_session, count_queries):
    _user, headers = staff_session
    assert cached_client.get("/api/v1/me", headers=headers).status_code == 200  # the miss
    with count_queries() as statements:
        response = cached_client.get("/api/v1/me", headers=headers)
    assert response.status_code == 200
    assert statements == []
    assert len(response.get_json()["jurisdiction"]) == 2


def test_a_change_to_the_cached_user_is_written(
    cached_client, session, staff_session, count_queries
):
    user, headers = staff_session
    assert cached_client.get("/api/v1/me", headers=headers).status_code == 200
    with count_queries() as statements:
        response = cached_client.patch(
            "/api/v1/me", json={"skills": ["first_aid"]}, headers=headers
        )
    assert response.status_code == 200, response.get_json()
    assert not _identity_statements(statements), statements
    session.expire_all()
    assert session.get(User, user.id).skills == ["first_aid"]


def test_each_hit_is_a_new_user_object(cached_client, staff_session):
    """Hits build their own objects from the cached values: nothing is shared between requests
    (or threads)."""
    _user, headers = staff_session
    seen = []
    for _ in range(3):
        with cached_client.application.test_request_context(headers=headers):
            verify_jwt_in_request()
            seen.append(get_current_user())
    assert len({id(user) for user in seen}) == 3
    assert len({id(user.jurisdiction[0]) for user in seen}) == 3
