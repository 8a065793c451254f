"""Push providers: a device says whether FCM, APNs or JPush reaches it (issue #16)."""

from __future__ import annotations

import uuid

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


def _my_task_notification(session, user, task):
    from sqlalchemy import select

    from notifications.models import Notification

    session.expire_all()
    return session.scalars(
        select(Notification).where(
            Notification.user_id == user.id, Notification.subject_id == uuid.UUID(task["id"])
        )
    ).one()


def test_receipt_is_idempotent_and_counted_for_staff(
    create_task, volunteer_at, fan_out, client, token_for, staff, session
):
    first, second = volunteer_at(30), volunteer_at(40)
    task = create_task()
    fan_out(task)
    # An answer lifts the withholding of a small radius task's counts.
    answer = {"action": "decline"}
    headers = token_for(second)
    client.post(f"/api/v1/tasks/{task['id']}/responses", json=answer, headers=headers)
    stats = client.get(f"/api/v1/tasks/{task['id']}", headers=token_for(staff)).json["statistics"]
    assert stats["received"] == 0
    # Without credentials the pushes were written to the log: not "sent".
    assert stats["deliveries"] == {"logged": 2}

    mine = _my_task_notification(session, first, task)
    path = f"/api/v1/me/notifications/{mine.id}/received"
    once = client.post(path, headers=token_for(first))
    assert once.status_code == 200
    assert once.json["received_at"] is not None
    twice = client.post(path, headers=token_for(first))
    assert twice.status_code == 200
    assert twice.json["received_at"] == once.json["received_at"]  # the first receipt is kept

    stats = client.get(f"/api/v1/tasks/{task['id']}", headers=token_for(staff)).json["statistics"]
    assert stats["received"] == 1
    assert _my_task_notification(session, second, task).received_at is None


def test_nobody_reports_receipt_of_someone_elses_notification(
    create_task, volunteer_at, fan_out, client, token_for, session
):
    first, second = volunteer_at(30), volunteer_at(40)
    task = create_task()
    fan_out(task)
    theirs = _my_task_notification(session, first, task)
    response = client.post(
        f"/api/v1/me/notifications/{theirs.id}/received", headers=token_for(second)
    )
    assert assert_problem(response, 404)["type"].endswith("not-found")
    assert _my_task_notification(session, first, task).received_at is None
    anonymous = client.post(f"/api/v1/me/notifications/{theirs.id}/received")
    assert_problem(anonymous, 401)
    missing = client.post(
        f"/api/v1/me/notifications/{uuid.uuid4()}/received", headers=token_for(second)
    )
    assert_problem(missing, 404)
