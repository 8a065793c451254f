"""Rate limits hold across gunicorn processes: they are counted in the shared store (redis),
not in each process's memory."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.ops.processes import base_environment, gunicorn, http

STORE = os.environ.get("TEST_RATELIMIT_STORAGE_URI", "")


@pytest.fixture
def store_url() -> str:
    """The test store's database 15, emptied: nothing of an earlier run counts."""
    import redis

    if not STORE:
        pytest.skip("needs TEST_RATELIMIT_STORAGE_URI (make test starts a private redis)")
    url = STORE.rsplit("/", 1)[0] + "/15"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def api(app, database_url, store_url, tmp_path):
    env = base_environment(
        QF_ENV="testing",
        DATABASE_URL=database_url,
        RATELIMIT_STORAGE_URI=store_url,
        LOGIN_RATE_LIMIT="5 per minute",
        LOGIN_CLIENT_RATE_LIMIT="1000 per minute",
        REGISTER_RATE_LIMIT="10 per hour",
        TIP_RATE_LIMIT="3 per minute",
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_KIB="1024",
    )
    with gunicorn(env, tmp_path / "gunicorn.log", workers=2) as base:
        yield base


def test_login_failures_per_account_hold_across_two_workers(api):
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    statuses = [
        http("POST", f"{api}/api/v1/auth/login", {"phone": phone, "password": "wrong-Guess-42"})[0]
        for _ in range(16)
    ]
    assert statuses.count(401) == 5, statuses
    assert statuses[5:] == [429] * 11


def test_registrations_per_client_hold_across_two_workers(api):
    statuses = [http("POST", f"{api}/api/v1/auth/register", {})[0] for _ in range(16)]
    assert statuses[:10] == [422] * 10, statuses
    assert statuses[10:] == [429] * 6


def test_anonymous_senders_are_counted_once_across_two_workers(api):
    """Anonymous tips are counted by a keyed hash of the address: the same in every process."""
    statuses = [http("POST", f"{api}/api/v1/tips", {"category": "theft"})[0] for _ in range(10)]
    assert statuses[:3] == [422] * 3, statuses
    assert statuses[3:] == [429] * 7


def test_anonymous_buckets_hold_no_address_and_change_every_day(app):
    """Two applications derive the same bucket for one address, a bucket that is not the
    address; its key changes with the day."""
    import datetime as dt

    from app.extensions import _bucket_key, anonymous_bucket
    from tests.conftest import make_app

    other = make_app(app.config["SQLALCHEMY_DATABASE_URI"])
    environ = {"REMOTE_ADDR": "198.51.100.7"}
    with app.test_request_context(environ_base=environ):
        first = anonymous_bucket()
    with other.test_request_context(environ_base=environ):
        second = anonymous_bucket()
    assert first == second
    assert "198.51.100.7" not in first
    today = dt.date(2026, 12, 2)
    secret = app.config["SECRET_KEY"]
    assert _bucket_key(secret, today) != _bucket_key(secret, today + dt.timedelta(days=1))
