"""Push devices: registered by the signed-in phone, moved to whoever registers the token next,
forgotten by their owner only."""

from __future__ import annotations

from sqlalchemy import select

from notifications.models import Device
from tests.core.test_errors import assert_problem

TOKEN = "x" * 40


def devices(session, token=TOKEN) -> list[tuple]:
    """The stored devices of `token`: (owner, platform)."""
    session.expire_all()
    owners = select(Device.user_id, Device.platform).where(Device.token == token)
    return session.execute(owners).all()


def register(client, headers, **overrides):
    body = {"token": TOKEN, "platform": "ios", **overrides}
    return client.post("/api/v1/devices", json=body, headers=headers)


def test_a_token_registered_by_another_account_moves_to_it(client, token_for, create_user, session):
    alice, bob = create_user(), create_user()
    first = register(client, token_for(alice))
    assert first.status_code == 201
    assert devices(session) == [(alice.id, "ios")]
    moved = register(client, token_for(bob), platform="android")
    assert moved.status_code == 201
    assert devices(session) == [(bob.id, "android")]  # one row, now bob's


def test_only_the_owner_forgets_a_device(client, token_for, create_user, session):
    alice, bob = create_user(), create_user()
    assert register(client, token_for(bob)).status_code == 201
    assert_problem(client.delete(f"/api/v1/devices/{TOKEN}", headers=token_for(alice)), 404)
    assert devices(session) == [(bob.id, "ios")]
    assert client.delete(f"/api/v1/devices/{TOKEN}", headers=token_for(bob)).status_code == 204
    assert devices(session) == []
    assert_problem(client.delete(f"/api/v1/devices/{TOKEN}", headers=token_for(bob)), 404)


def test_a_bad_device_is_refused_and_not_stored(client, token_for, create_user, session):
    bob = create_user()
    bad = register(client, token_for(bob), token="short", platform="nokia")
    problem = assert_problem(bad, 422)
    assert {e["pointer"] for e in problem["errors"]} == {"/token", "/platform"}
    assert devices(session, "short") == []
