"""Push devices: registered by the signed-in phone, moved to whoever registers the token next,
forgotten by their owner only."""

from __future__ import annotations


def test_devices_register_move_and_delete(client, token_for, create_user, session):
    from notifications.models import Device

    alice, bob = create_user(), create_user()
    body = {"token": "x" * 40, "platform": "ios"}
    assert client.post("/api/v1/devices", json=body, headers=token_for(alice)).status_code == 201
    assert client.post("/api/v1/devices", json=body, headers=token_for(bob)).status_code == 201
    session.expire_all()
    assert session.query(Device).filter_by(token="x" * 40).one().user_id == bob.id
    assert client.delete(f"/api/v1/devices/{'x' * 40}", headers=token_for(alice)).status_code == 404
    assert client.delete(f"/api/v1/devices/{'x' * 40}", headers=token_for(bob)).status_code == 204
    bad = client.post(
        "/api/v1/devices", json={"token": "short", "platform": "nokia"}, headers=token_for(bob)
    )
    assert bad.status_code == 422
