"""The sign-in policy (app/auth/login_limits.py): strangers' failures cannot lock an owner out
of the device they signed in on before, and guesses at one account stay bounded whatever the
number of clients, concurrent ones included."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from sqlalchemy import func, select

from app.auth import login_limits
from app.core.audit import AuditEvent
from app.extensions import db
from tests.conftest import PASSWORD, make_app

LOGIN = "/api/v1/auth/login"
WRONG = "Wrong-Password-123"


def attempt(client, phone, password, device_token=None, address="198.51.100.7"):
    body = {"phone": phone, "password": password}
    if device_token is not None:
        body["device_token"] = device_token
    return client.post(LOGIN, json=body, environ_base={"REMOTE_ADDR": address})


@pytest.fixture
def owner(client, create_user):
    """An account and the device token its owner's phone got at its last login."""
    user = create_user(phone=f"137{uuid.uuid4().int % 10**8:08d}")
    first = attempt(client, user.phone, PASSWORD, address="203.0.113.5")
    assert first.status_code == 200
    return user, first.get_json()["device_token"]


def strangers_guess(client, phone, times=30):
    """`times` wrong passwords, each from another client address."""
    return [attempt(client, phone, WRONG, address=f"192.0.2.{n}").status_code for n in range(times)]


def test_strangers_failures_do_not_lock_the_owner_out_of_their_own_device(client, owner):
    user, device = owner
    statuses = strangers_guess(client, user.phone)
    # Bounded: the account takes 5 attempts a minute (LOGIN_RATE_LIMIT), then 429 before any
    # password is checked, whichever client asks.
    assert statuses == [401] * 4 + [429] * 26  # the owner's own login was the first of 5
    signed_in = attempt(client, user.phone, PASSWORD, device, address="203.0.113.5")
    assert signed_in.status_code == 200, signed_in.get_json()
    assert signed_in.get_json()["device_token"]
    # The same device from another network (a phone moving to mobile data) too.
    assert attempt(client, user.phone, PASSWORD, device, address="100.64.0.9").status_code == 200
    # Without its device token the owner is a stranger like the others: wait, or use the phone.
    refused = attempt(client, user.phone, PASSWORD, address="203.0.113.5")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.mimetype == "application/problem+json"


def test_only_the_guesses_the_limit_allows_reach_the_password(client, session, owner):
    user, _device = owner
    strangers_guess(client, user.phone, times=40)
    failures = session.scalar(
        select(func.count()).where(
            AuditEvent.action == "auth.login",
            AuditEvent.outcome == "failure",
            AuditEvent.object_ids.contains([str(user.id)]),
        )
    )
    assert failures == 4


def test_a_device_token_counts_only_for_its_own_account(client, create_user, owner):
    victim, _ = owner
    other = create_user(phone=f"137{uuid.uuid4().int % 10**8:08d}")
    others_device = attempt(client, other.phone, PASSWORD).get_json()["device_token"]
    strangers_guess(client, victim.phone)
    for token in (others_device, others_device[:-2] + "xx", "not-a-token", "x" * 600):
        response = attempt(client, victim.phone, PASSWORD, token)
        assert response.status_code in (422, 429), token  # 422: longer than a token can be
        assert response.status_code != 200


@pytest.mark.parametrize("token", ["\ud800", "é" * 10, 12, ["x"], {"a": 1}, "", "x" * 10_000])
def test_a_malformed_device_token_is_a_client_error(client, create_user, token):
    user = create_user(phone=f"137{uuid.uuid4().int % 10**8:08d}")
    body = {"phone": user.phone, "password": WRONG, "device_token": token}
    # As JSON text with escapes (a lone surrogate has no UTF-8): what a hostile client sends.
    response = client.post(LOGIN, data=json.dumps(body), content_type="application/json")
    assert response.status_code in (401, 422)
    assert response.mimetype == "application/problem+json"


def test_reading_the_limits_keys_never_raises_on_an_unreadable_body(app):
    """The limits read the body before the view: an error there would count as an outage of
    the limiter's store. A body too large to read is no device token and the malformed
    account's bucket; the view then answers 413."""
    big = b'{"phone": "13700000001", "device_token": "' + b"x" * 2_000_000 + b'"}'
    with app.test_request_context(LOGIN, method="POST", data=big, content_type="application/json"):
        assert login_limits.trusted_device() is None
        assert login_limits.counted_per_account() is False  # it names no account


def test_bodies_that_name_no_account_never_use_up_an_accounts_attempts(client):
    """No password can be guessed without a phone number: such attempts answer what they are
    (400, 422 or 401), counted only per client."""
    for body in ({"phone": "not a phone", "password": WRONG}, {"password": WRONG}):
        statuses = {client.post(LOGIN, json=body).status_code for _ in range(8)}
        assert 429 not in statuses and statuses <= {400, 401, 422}, body
    deep = "[" * 5000 + "]" * 5000
    for _ in range(8):
        response = client.post(LOGIN, data=deep, content_type="application/json")
        assert response.status_code == 400


def test_guesses_with_a_stolen_device_token_are_bounded_too(app, client, owner, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_DEVICE_RATE_LIMIT", "3 per minute")
    user, device = owner
    statuses = [
        attempt(client, user.phone, WRONG, device, address=f"192.0.2.{n}").status_code
        for n in range(6)
    ]
    assert statuses == [401, 401, 401, 429, 429, 429]
    assert attempt(client, user.phone, PASSWORD, device).status_code == 429
    # The owner's other device (another token) is not held by this one's bucket.
    other_device = attempt(client, user.phone, PASSWORD).get_json()["device_token"]
    assert attempt(client, user.phone, PASSWORD, other_device).status_code == 200


def test_concurrent_guesses_cannot_slip_past_the_limit(database_url):
    """Each attempt is counted before its password is checked: 20 guesses at once at an
    unknown account, from 20 clients, and only the account's 5 are answered 401."""
    app = make_app(database_url, LOGIN_RATE_LIMIT="5 per minute")
    phone = f"137{uuid.uuid4().int % 10**8:08d}"
    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def guess(n: int) -> None:
        own = app.test_client()
        barrier.wait()
        statuses.append(attempt(own, phone, WRONG, address=f"192.0.2.{100 + n}").status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with app.app_context():
        db.engine.dispose()
    assert sorted(statuses) == [401] * 5 + [429] * 15
