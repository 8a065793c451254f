"""Pushes through the real firebase-admin SDK to a local FCM-compatible fake server."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update

from notifications import push
from notifications.models import Delivery, Device


def deliveries(session, task):
    rows = session.execute(
        select(Device.token, Delivery.status, Delivery.error, Delivery.attempts)
        .outerjoin(Device, Device.id == Delivery.device_id)
        .where(Delivery.task_id == uuid.UUID(task["id"]))
    ).all()
    return {r.token: r for r in rows}


def test_each_fcm_answer_has_its_outcome(fcm, create_task, volunteer_at, fan_out, session):
    ok, dead, broken, quota, down = (volunteer_at(10 * n) for n in range(1, 6))
    fcm.script(f"token-{dead.id}", ["UNREGISTERED"])
    fcm.script(f"token-{broken.id}", ["INVALID_ARGUMENT"])
    fcm.script(f"token-{quota.id}", ["QUOTA_EXCEEDED", "ok"])
    fcm.script(f"token-{down.id}", ["UNAVAILABLE", "ok"])
    task = create_task(needed=5, targeting={"mode": "radius", "max_recipients": 10})
    fan_out(task)
    outcome = {
        token: (row.status, row.error, row.attempts)
        for token, row in deliveries(session, task).items()
    }
    assert outcome[f"token-{ok.id}"] == ("sent", None, 1)
    assert outcome[f"token-{broken.id}"] == ("invalid", "INVALID_ARGUMENT", 1)  # not retried
    assert outcome[f"token-{quota.id}"] == ("sent", None, 2)  # retried after backing off
    assert outcome[f"token-{down.id}"][0] == "sent"  # retried (by the SDK's own retry)
    # UNREGISTERED: the device is gone, its delivery stays with its outcome.
    assert None in outcome and outcome[None][:2] == ("unregistered", "UNREGISTERED")
    assert session.scalar(select(Device).where(Device.token == f"token-{dead.id}")) is None
    assert fcm.slept and fcm.slept[0] >= push.BACKOFF_S  # backed off before retrying
    assert fcm.tokens_issued >= 1  # the SDK fetched its access token from our token_uri
    attempts = [r.token for r in fcm.received]
    assert attempts.count(f"token-{broken.id}") == 1


def test_the_message_carries_the_task_and_urgency(fcm, create_task, volunteer_at, fan_out):
    volunteer = volunteer_at(10)
    task = create_task(
        kind="urgent_assist", title="紧急" + "很长的标题" * 39, description="说明" * 1900
    )
    fan_out(task)
    (received,) = [r for r in fcm.delivered() if r.token == f"token-{volunteer.id}"]
    message = received.message
    assert message["data"]["task_id"] == task["id"]
    assert message["data"]["kind"] == "task_offered"
    assert message["android"]["priority"] == "high"
    assert message["apns"]["headers"]["apns-priority"] == "10"
    size = push.payload_size(
        push.Push(
            None,
            "",
            message["notification"]["title"],
            message["notification"].get("body", ""),
            message["data"],
        )
    )
    assert size <= push.MAX_PAYLOAD_BYTES


def test_ordinary_tasks_are_not_high_priority(fcm, create_task, volunteer_at, fan_out):
    volunteer = volunteer_at(10)
    create = create_task(kind="publicity")
    fan_out(create)
    (received,) = [r for r in fcm.delivered() if r.token == f"token-{volunteer.id}"]
    assert received.message["android"]["priority"] == "normal"
    assert received.message["apns"]["headers"]["apns-priority"] == "5"


def test_chunks_are_at_most_500():
    class Recorder(push.FcmSender):
        def _send_chunk(self, pushes, outcomes):
            sizes.append(len(pushes))
            for p in pushes:
                outcomes[p.key] = push.Outcome(p.key, "sent")

    sizes: list[int] = []
    sender = Recorder(credentials_file="unused")
    pushes = [push.Push(n, f"t{n}", "t", "b", {}) for n in range(1_234)]
    assert len(sender.send(pushes)) == 1_234
    assert sizes == [500, 500, 234]


def test_long_texts_are_cut_to_fit_fcms_4_kb():
    data = {"kind": "task_offered", "task_id": str(uuid.uuid4())}
    title, body = push.fit("标题" * 100, "正文" * 5000, data)
    assert push.payload_size(push.Push(None, "", title, body, data)) <= push.MAX_PAYLOAD_BYTES
    assert body.endswith("…") and title.startswith("标题")


def test_only_fcm_devices_are_sent_to_fcm(fcm, create_task, volunteer_at, fan_out, session):
    """An APNs or JPush token means nothing to FCM: it is logged until its sender exists."""
    on_fcm, on_apns, on_jpush = (volunteer_at(10 * n) for n in range(1, 4))
    session.execute(
        update(Device).where(Device.user_id == on_apns.id).values(provider="apns", platform="ios")
    )
    session.execute(update(Device).where(Device.user_id == on_jpush.id).values(provider="jpush"))
    session.commit()
    task = create_task(needed=3, targeting={"mode": "radius", "max_recipients": 10})
    fan_out(task)
    outcome = {token: row.status for token, row in deliveries(session, task).items()}
    assert outcome == {
        f"token-{on_fcm.id}": "sent",
        f"token-{on_apns.id}": "logged",
        f"token-{on_jpush.id}": "logged",
    }
    assert [r.token for r in fcm.received] == [f"token-{on_fcm.id}"]


def test_sends_reuse_a_bounded_pool_of_threads(fcm, tmp_path, monkeypatch):
    """Two chunks of 500 go through the sender's own `concurrency` threads, started once, and
    never a thread a message (firebase-admin's send_each starts 500 a call)."""
    import threading

    started: list[str] = []
    start = threading.Thread.start

    def recording_start(thread):
        started.append(thread.name)
        return start(thread)

    sender = push.FcmSender(
        credentials_file=str(fcm.service_account(tmp_path)), endpoint=fcm.base_url, concurrency=8
    )
    try:
        monkeypatch.setattr(threading.Thread, "start", recording_start)
        for _ in range(2):
            outcomes = sender.send([push.Push(n, f"pool-{n}", "t", "b", {}) for n in range(500)])
            assert [o.status for o in outcomes] == ["sent"] * 500
        monkeypatch.undo()
    finally:
        sender.close()
    ours = [name for name in started if name.startswith("fcm")]
    assert 0 < len(ours) <= 8 and len(set(ours)) == len(ours)
    assert not [name for name in started if name.startswith("ThreadPoolExecutor")]
