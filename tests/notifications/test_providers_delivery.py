"""Through the real path: a task's fan-out and send job reach devices of all three providers,
each through its own sender to its own fake; what a provider calls dead is deleted (#16)."""

from __future__ import annotations

import datetime as dt
import time
import uuid

from flask import current_app
from sqlalchemy import select

from app.tasks import service as tasks_service
from notifications import push
from notifications import service as notifications
from notifications.apns import ApnsSender
from notifications.jpush import JPushSender
from notifications.models import Delivery, Device
from tests.core.test_errors import assert_problem
from tests.fakes import apns as fake_apns


def register(client, token_for, user, token, provider, platform):
    body = {"token": token, "platform": platform, "provider": provider, "app_version": "3.0"}
    response = client.post("/api/v1/devices", json=body, headers=token_for(user))
    assert response.status_code == 201, response.json
    return token


def deliveries(session, task):
    session.expire_all()
    rows = session.execute(
        select(Device.token, Delivery.status, Delivery.error, Delivery.message_id)
        .outerjoin(Device, Device.id == Delivery.device_id)
        .where(Delivery.task_id == uuid.UUID(task["id"]))
    ).all()
    return rows


def test_a_task_reaches_fcm_apns_and_jpush_devices(
    fcm, apns, jpush, create_task, volunteer_at, fan_out, client, token_for, session, staff
):
    android = volunteer_at(10)  # an FCM device, token-<id>
    iphone = volunteer_at(20, device=False)
    china = volunteer_at(30, device=False)
    both = volunteer_at(40, device=False)  # an iPhone and a JPush phone
    ios_token = register(client, token_for, iphone, fake_apns.device_token(), "apns", "ios")
    jpush_id = register(client, token_for, china, "1a0018970a8d065e7b0", "jpush", "android")
    ios_two = register(client, token_for, both, fake_apns.device_token(), "apns", "ios")
    jpush_two = register(client, token_for, both, "160a3797c8f373355a2", "jpush", "android")
    task = create_task(kind="urgent_assist", needed=4)
    assert fan_out(task) == 4

    assert [r.token for r in fcm.delivered()] == [f"token-{android.id}"]
    assert sorted(r.token for r in apns.delivered()) == sorted([ios_token, ios_two])
    assert sorted(jpush.delivered()) == sorted([jpush_id, jpush_two])
    assert len(jpush.received) == 1  # both JPush phones in one batch
    assert apns.connections == 1
    # Each provider got the task, urgent.
    for received in apns.delivered():
        assert received.payload["task_id"] == task["id"]
        assert received.headers["apns-priority"] == "10"
        assert received.payload["aps"]["interruption-level"] == "time-sensitive"
    notification = jpush.received[0].body["notification"]
    assert notification["android"]["extras"]["task_id"] == task["id"]
    assert notification["android"]["priority"] == 2

    rows = {r.token: r for r in deliveries(session, task)}
    assert {r.status for r in rows.values()} == {"sent"}
    apns_ids = {r.token: r.apns_id for r in apns.delivered()}
    assert rows[ios_token].message_id == apns_ids[ios_token]
    assert rows[jpush_id].message_id == rows[jpush_two].message_id == jpush.received[0].msg_id
    # An answer lifts the withholding of a small radius task's counts.
    answer = {"action": "decline"}
    client.post(f"/api/v1/tasks/{task['id']}/responses", json=answer, headers=token_for(both))
    stats = client.get(f"/api/v1/tasks/{task['id']}", headers=token_for(staff)).json["statistics"]
    assert stats["deliveries"] == {"sent": 5}


def test_a_send_job_sends_to_its_providers_at_once(
    fcm, apns, jpush, create_task, volunteer_at, client, token_for, session
):
    """Each provider answers after 0.8 s: one after the other, a send job of three providers'
    devices would take 2.4 s; at once, about 0.8 s (#16 item 7)."""
    android = volunteer_at(10)
    iphone = volunteer_at(20, device=False)
    china = volunteer_at(30, device=False)
    register(client, token_for, iphone, fake_apns.device_token(), "apns", "ios")
    register(client, token_for, china, "1a0018970a8d065e7b1", "jpush", "android")
    task = create_task(kind="urgent_assist", needed=3)
    settings = tasks_service.TaskSettings.from_config(current_app.config)
    assert (
        tasks_service.fan_out(session, uuid.UUID(task["id"]), 0, dt.datetime.now(dt.UTC), settings)
        == 3
    )
    pending = session.scalars(
        select(Delivery.id).where(Delivery.task_id == uuid.UUID(task["id"]))
    ).all()
    for fake in (fcm, apns, jpush):
        fake.delay_s = 0.8

    started = time.monotonic()
    counts = notifications.send(session, pending)
    took = time.monotonic() - started

    assert counts == {"sent": 3}
    assert [r.token for r in fcm.delivered()] == [f"token-{android.id}"]
    assert len(apns.delivered()) == len(jpush.delivered()) == 1
    assert took < 1.8, took


def test_devices_apns_or_jpush_call_dead_are_deleted(
    apns, jpush, create_task, volunteer_at, fan_out, client, token_for, session
):
    iphone = volunteer_at(10, device=False)
    china = volunteer_at(20, device=False)
    dead_ios = register(client, token_for, iphone, fake_apns.device_token(), "apns", "ios")
    live_ios = register(client, token_for, iphone, fake_apns.device_token(), "apns", "ios")
    dead_jpush = register(client, token_for, china, "1a0018970a0000000000", "jpush", "android")
    apns.script(dead_ios, ["Unregistered"])
    jpush.forget(dead_jpush)
    task = create_task()
    fan_out(task)

    statuses = sorted((r.status, r.error) for r in deliveries(session, task))
    assert statuses == [("sent", None), ("unregistered", "1011"), ("unregistered", "Unregistered")]
    session.expire_all()
    remaining = set(session.scalars(select(Device.token)))
    assert live_ios in remaining
    assert dead_ios not in remaining and dead_jpush not in remaining


def test_apns_retries_inside_the_send_job(
    apns, create_task, volunteer_at, fan_out, client, token_for, session
):
    iphone = volunteer_at(10, device=False)
    token = register(client, token_for, iphone, fake_apns.device_token(), "apns", "ios")
    apns.script(token, ["TooManyRequests", "ServiceUnavailable", "ok"])
    task = create_task()
    fan_out(task)
    session.expire_all()
    delivery = session.scalars(
        select(Delivery).where(Delivery.task_id == uuid.UUID(task["id"]))
    ).one()
    assert (delivery.status, delivery.attempts) == ("sent", 3)


def test_without_credentials_apns_and_jpush_pushes_are_logged(
    app, create_task, volunteer_at, fan_out, client, token_for, session
):
    for provider in ("apns", "jpush"):
        app.extensions.pop(f"qunfang.push_sender.{provider}", None)
    iphone = volunteer_at(10, device=False)
    register(client, token_for, iphone, fake_apns.device_token(), "apns", "ios")
    register(client, token_for, iphone, "1a0018970a8d065e7b0", "jpush", "android")
    task = create_task()
    fan_out(task)
    assert {r.status for r in deliveries(session, task)} == {"logged"}


def test_each_provider_gets_its_sender_from_its_settings(tmp_path):
    fake = fake_apns.FakeApns()
    key = fake.key_file(tmp_path)
    assert isinstance(push.make_sender({}, "apns"), push.LoggingSender)
    assert isinstance(push.make_sender({}, "jpush"), push.LoggingSender)
    apns = push.make_sender(
        {
            "APNS_KEY_FILE": str(key),
            "APNS_KEY_ID": fake.key_id,
            "APNS_TEAM_ID": fake.team_id,
            "APNS_TOPIC": "cn.qunfang.app",
            "APNS_SANDBOX": True,
        },
        "apns",
    )
    assert isinstance(apns, ApnsSender)
    assert apns.endpoint == "https://api.sandbox.push.apple.com"
    jpush = push.make_sender({"JPUSH_APP_KEY": "k" * 24, "JPUSH_MASTER_SECRET": "s" * 24}, "jpush")
    assert isinstance(jpush, JPushSender)
    assert (jpush.endpoint, jpush.apns_production) == ("https://api.jpush.cn", True)


def test_a_jpush_registration_id_of_19_characters_is_accepted(client, token_for, create_user):
    user = create_user()
    body = {"token": "1a0018970a8d065e7b0", "platform": "android", "provider": "jpush"}
    assert client.post("/api/v1/devices", json=body, headers=token_for(user)).status_code == 201
    short = {"token": "1a00189", "platform": "android", "provider": "jpush"}
    response = client.post("/api/v1/devices", json=short, headers=token_for(user))
    assert assert_problem(response, 422)["errors"][0]["pointer"] == "/token"
