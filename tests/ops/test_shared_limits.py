"""Rate limits hold across gunicorn processes: they are counted in the shared store (redis),
not in each process's memory."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor

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
        # Slow enough (tens of ms) that two logins at once occupy both workers.
        ARGON2_TIME_COST="2",
        ARGON2_MEMORY_KIB="16384",
    )
    with gunicorn(env, tmp_path / "gunicorn.log", workers=2) as base:
        yield base


def _random_phone() -> str:
    return f"139{uuid.uuid4().int % 10**8:08d}"


def test_login_failures_per_account_hold_across_two_workers(api):
    """Each attempt on the account goes with an attempt on another account, at the same time:
    the two workers each take one, so the account's attempts land on both. They are sent one
    after the other: only failures count, after the answer, so parallel attempts on one
    account could each pass the check before either is counted."""
    phone = _random_phone()

    def login(number: str) -> int:
        body = {"phone": number, "password": "wrong-Guess-42"}
        return http("POST", f"{api}/api/v1/auth/login", body)[0]

    statuses = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(16):
            mine, _decoy = pool.map(login, [phone, _random_phone()])
            statuses.append(mine)
    assert statuses.count(401) == 5, statuses
    assert statuses[5:] == [429] * 11


def _refused_form(base: str) -> int:
    """An Open311 form with a NUL in it: refused (400) by the view; its rate-limit key reads
    the form first."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - loopback only
        f"{base}/open311/v2/requests.json",
        data=b"api_key=x&service_code=theft&description=a%00b&lat=39.9&long=116.4",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_malformed_bodies_cannot_switch_shared_limits_off(api):
    """flask-limiter takes an exception from a rate-limit key for an outage of its store and
    counts in process memory for a while: a key reading a refused body must not raise, or any
    sender could make each worker count logins on its own."""
    phone = _random_phone()

    def login(number: str) -> int:
        body = {"phone": number, "password": "wrong-Guess-42"}
        return http("POST", f"{api}/api/v1/auth/login", body)[0]

    statuses, refused = [], []
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(16):
            bad = [pool.submit(_refused_form, api) for _ in range(4)]
            mine, _decoy = pool.map(login, [phone, _random_phone()])
            statuses.append(mine)
            refused += [future.result() for future in bad]
    assert set(refused) == {400}
    assert statuses.count(401) == 5, statuses


def _concurrently(calls: int, call) -> list[int]:
    """`calls` requests, four at a time, so that both workers are kept busy."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda _: call(), range(calls)))


def test_registrations_per_client_hold_across_two_workers(api):
    statuses = _concurrently(16, lambda: http("POST", f"{api}/api/v1/auth/register", {})[0])
    assert sorted(statuses) == [422] * 10 + [429] * 6, statuses


def test_anonymous_senders_are_counted_once_across_two_workers(api):
    """Anonymous tips are counted by a keyed hash of the address: the same in every process."""
    statuses = _concurrently(
        10, lambda: http("POST", f"{api}/api/v1/tips", {"category": "theft"})[0]
    )
    assert sorted(statuses) == [422] * 3 + [429] * 7, statuses


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
