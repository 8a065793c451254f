"""Pushes through the real firebase-admin SDK to a local FCM-compatible fake server."""

from __future__ import annotations

import os
import uuid

import pytest
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


@pytest.fixture
def sender(fcm, tmp_path):
    """A sender of its own (not the application's) against the test's fake FCM."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    def make(**options):
        made = push.FcmSender(
            credentials_file=str(fcm.service_account(tmp_path)),
            endpoint=options.pop("endpoint", fcm.base_url),
            sleep=sleep,
            **options,
        )
        made.slept = slept
        senders.append(made)
        return made

    senders: list[push.FcmSender] = []
    yield make
    for made in senders:
        made.close()


def pushes(count: int, prefix: str = "t") -> list[push.Push]:
    return [push.Push(n, f"{prefix}-{n}", "t", "b", {"kind": "task_offered"}) for n in range(count)]


def test_sends_share_a_bounded_set_of_kept_alive_connections(fcm, sender, monkeypatch):
    """1,000 pushes, twice, through a sender allowed 8 connections: never more than 8 open, the
    same 8 kept for the second send, and one thread (its event loop), never one a message."""
    import threading

    started: list[str] = []
    start = threading.Thread.start

    def recording_start(thread):
        started.append(thread.name)
        return start(thread)

    bounded = sender(concurrency=8)
    monkeypatch.setattr(threading.Thread, "start", recording_start)
    for round_ in range(2):
        outcomes = bounded.send(pushes(1_000, f"pool{round_}"))
        assert [o.status for o in outcomes] == ["sent"] * 1_000
    monkeypatch.undo()
    assert len(fcm.delivered()) == 2_000
    # Concurrent, bounded, and kept alive: the second send reused the first one's connections.
    assert 1 < len(fcm.send_connections) <= 8
    # Its event loop, and asyncio's default executor resolving addresses: never one a message.
    assert started.count("fcm") == 1
    assert len(started) <= 1 + min(32, (os.cpu_count() or 1) + 4)


def test_a_refused_access_token_is_fetched_anew_once_and_the_pushes_go(fcm, sender):
    """FCM answers 401 when the access token was revoked or expired early: the sender fetches
    one new token for all the pushes refused at once, and sends them (not an attempt lost)."""
    fresh = sender()
    assert [o.status for o in fresh.send(pushes(3, "before"))] == ["sent"] * 3
    issued = fcm.tokens_issued
    fcm.revoke_access_token()
    outcomes = fresh.send(pushes(20, "after"))
    assert [(o.status, o.attempts) for o in outcomes] == [("sent", 1)] * 20
    assert fcm.tokens_issued == issued + 1  # one new token, not one a refused push
    assert fcm.unauthenticated >= 1


def test_a_push_the_service_does_not_answer_in_time_fails_once_not_sent_twice(fcm, sender):
    """A time-out may come after FCM took the message: it is `failed` as DEADLINE_EXCEEDED,
    not retried (a volunteer must not get the same task twice)."""
    fcm.delay_s = 0.5
    (outcome,) = sender(timeout_s=0.2).send(pushes(1, "slow"))
    assert (outcome.status, outcome.error, outcome.attempts) == ("failed", "DEADLINE_EXCEEDED", 1)
    fcm.delay_s = 0


def test_a_service_that_cannot_be_reached_is_retried_with_backoff_then_failed(sender):
    unreachable = sender(endpoint="http://127.0.0.1:9")  # discard: nothing listens
    (outcome,) = unreachable.send(pushes(1, "down"))
    assert (outcome.status, outcome.error, outcome.attempts) == (
        "failed",
        "UNAVAILABLE",
        push.MAX_ATTEMPTS,
    )
    assert len(unreachable.slept) == push.MAX_ATTEMPTS - 1
    assert unreachable.slept == sorted(unreachable.slept)  # backing off further each time
    assert unreachable.slept[0] >= push.BACKOFF_S


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ("UNREGISTERED", ("unregistered", "UNREGISTERED", 1)),
        ("INVALID_ARGUMENT", ("invalid", "INVALID_ARGUMENT", 1)),
        ("QUOTA_EXCEEDED", ("failed", "QUOTA_EXCEEDED", push.MAX_ATTEMPTS)),
        ("UNAVAILABLE", ("failed", "UNAVAILABLE", push.MAX_ATTEMPTS)),
        ("INTERNAL", ("failed", "INTERNAL", push.MAX_ATTEMPTS)),
    ],
)
def test_each_fcm_error_has_its_outcome_and_retries(fcm, sender, answer, outcome):
    """What each of FCM's errors becomes when it never stops, and how often it is tried."""
    fcm.script("always", [answer])
    (result,) = sender().send([push.Push(1, "always", "t", "b", {})])
    assert (result.status, result.error, result.attempts) == outcome
    assert len([r for r in fcm.received if r.token == "always"]) == outcome[2]


def test_retry_after_is_honoured(fcm, sender):
    fcm.retry_after_s = 7
    fcm.script("busy", ["QUOTA_EXCEEDED", "ok"])
    quota = sender()
    (result,) = quota.send([push.Push(1, "busy", "t", "b", {})])
    assert (result.status, result.attempts) == ("sent", 2)
    assert 7 <= quota.slept[0] <= 7 * 1.25  # FCM's Retry-After, with at most a quarter jitter


def test_fcm_is_reached_through_the_configured_proxy_unless_no_proxy_names_it(monkeypatch):
    """Servers in mainland China often reach FCM only through a proxy: HTTPS_PROXY is used, as
    firebase-admin's own session would, and NO_PROXY exempts a host."""
    url = "https://fcm.googleapis.com/v1/projects/p/messages:send"
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert push._proxy(url) is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.district.internal:3128")
    assert push._proxy(url) == "http://proxy.district.internal:3128"
    assert push._proxy("http://127.0.0.1:8080/v1/x") is None  # an http:// endpoint: no https proxy
    monkeypatch.setenv("NO_PROXY", "googleapis.com")
    assert push._proxy(url) is None
