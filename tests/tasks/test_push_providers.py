"""Push providers: a device says whether FCM, APNs or JPush reaches it (issue #16)."""

from __future__ import annotations

from notifications.models import Device
from tests.core.test_errors import assert_problem

TOKEN = "p" * 64


def test_a_device_is_registered_with_its_provider(client, token_for, create_user, session):
    user = create_user()
    body = {"token": TOKEN, "platform": "ios", "provider": "apns", "app_version": "3.2.0"}
    response = client.post("/api/v1/devices", json=body, headers=token_for(user))
    assert response.status_code == 201
    assert response.json["provider"] == "apns"
    session.expire_all()
    device = session.query(Device).filter_by(token=TOKEN).one()
    assert (device.provider, device.platform, device.app_version) == ("apns", "ios", "3.2.0")


def test_a_refresh_can_change_the_provider(client, token_for, create_user, session):
    user = create_user()
    first = {"token": TOKEN, "platform": "android", "provider": "fcm"}
    assert client.post("/api/v1/devices", json=first, headers=token_for(user)).status_code == 201
    again = {"token": TOKEN, "platform": "android", "provider": "jpush"}
    assert client.post("/api/v1/devices", json=again, headers=token_for(user)).status_code == 201
    session.expire_all()
    assert session.query(Device).filter_by(token=TOKEN).one().provider == "jpush"


def test_an_app_that_names_no_provider_is_fcm(client, token_for, create_user, session):
    """Apps released before the issue know only FCM and do not send the field."""
    user = create_user()
    body = {"token": TOKEN, "platform": "android"}
    response = client.post("/api/v1/devices", json=body, headers=token_for(user))
    assert response.status_code == 201
    assert response.json["provider"] == "fcm"


def test_an_unknown_provider_is_a_problem_and_registers_nothing(
    client, token_for, create_user, session
):
    user = create_user()
    body = {"token": TOKEN, "platform": "android", "provider": "huawei"}
    response = client.post("/api/v1/devices", json=body, headers=token_for(user))
    problem = assert_problem(response, 422)
    assert problem["type"].endswith("validation-error")
    assert problem["errors"][0]["pointer"] == "/provider"
    session.expire_all()
    assert session.query(Device).filter_by(token=TOKEN).count() == 0
