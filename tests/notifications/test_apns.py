"""The APNs sender (notifications/apns.py) against a local HTTP/2 APNs (tests/fakes/apns.py):
provider tokens, headers and payload, each status's outcome, retries, concurrency."""

from __future__ import annotations

import logging
import time

import httpcore
import httpx
import pytest

from app.core.p8 import ApnsKeyError, load_key
from notifications import apns as apns_module
from notifications.apns import ApnsSender, ProviderToken
from notifications.push import BACKOFF_S, MAX_ATTEMPTS, Push
from tests.fakes import apns as fake_apns


def pushes(count, **values):
    return [
        Push(
            key=n,
            token=fake_apns.device_token(),
            title="南郎家园东门人员聚集",
            body="请协助疏导",
            data={"kind": "task_offered", "task_id": "t-1"},
            **values,
        )
        for n in range(count)
    ]


def by_key(outcomes):
    return {o.key: o for o in outcomes}


def test_pushes_go_over_one_http2_connection_with_apns_headers(apns_sender, apns_fake, caplog):
    sent = pushes(20)
    before = int(time.time())
    with caplog.at_level(logging.DEBUG):
        outcomes = apns_sender.send(sent)
    assert not [r for r in caplog.records if sent[0].token in r.getMessage()]  # no token logged
    assert [o.status for o in outcomes] == ["sent"] * 20
    assert [o.key for o in outcomes] == list(range(20))  # in the order given
    ids = {r.token: r for r in apns_fake.received}
    for push, outcome in zip(sent, outcomes, strict=True):
        # The apns-id APNs answered is the delivery's message id.
        assert outcome.message_id == ids[push.token].apns_id
        assert (outcome.error, outcome.attempts) == (None, 1)
    # One multiplexed HTTP/2 connection (the fake speaks nothing else) for all 20 streams.
    assert apns_fake.connections == 1
    assert len(apns_fake.received) == 20
    received = apns_fake.received[0]
    assert received.headers["apns-topic"] == apns_fake.topic
    assert received.headers["apns-push-type"] == "alert"
    assert received.headers["apns-priority"] == "5"
    assert before + 3600 <= int(received.headers["apns-expiration"]) <= time.time() + 3600 + 1
    assert received.payload["aps"]["alert"] == {
        "title": "南郎家园东门人员聚集",
        "body": "请协助疏导",
    }
    assert received.payload["aps"]["interruption-level"] == "active"
    assert "sound" not in received.payload["aps"]
    assert (received.payload["kind"], received.payload["task_id"]) == ("task_offered", "t-1")


def test_the_fake_speaks_only_http2(apns_fake):
    """So a push the fake received came over HTTP/2: an HTTP/1.1 client gets no answer."""
    with pytest.raises(httpx.RemoteProtocolError), httpx.Client(http2=False) as client:
        client.post(f"{apns_fake.base_url}/3/device/{fake_apns.device_token()}", content=b"{}")
    assert apns_fake.received == []


def test_urgent_pushes_are_priority_10_and_time_sensitive(apns_sender, apns_fake):
    (outcome,) = apns_sender.send(pushes(1, urgent=True, ttl_s=600))
    assert outcome.status == "sent"
    (received,) = apns_fake.received
    assert received.headers["apns-priority"] == "10"
    assert int(received.headers["apns-expiration"]) <= time.time() + 601
    assert received.payload["aps"]["interruption-level"] == "time-sensitive"
    assert received.payload["aps"]["sound"] == "default"


@pytest.mark.parametrize("reason", ["BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"])
def test_dead_tokens_are_unregistered_and_not_retried(apns_sender, apns_fake, reason):
    dead, alive = pushes(2)
    apns_fake.script(dead.token, [reason])
    outcome = by_key(apns_sender.send([dead, alive]))
    assert (outcome[0].status, outcome[0].error, outcome[0].attempts) == (
        "unregistered",
        reason,
        1,
    )
    assert outcome[1].status == "sent"
    assert [r.token for r in apns_fake.received].count(dead.token) == 1
    assert apns_sender.slept == []


def test_a_token_that_is_not_hex_never_reaches_apns(apns_sender, apns_fake):
    (push,) = pushes(1)
    odd = Push(push.key, "../../other/path", push.title, push.body, push.data)
    (outcome,) = apns_sender.send([odd])
    assert (outcome.status, outcome.error) == ("unregistered", "BadDeviceToken")
    assert apns_fake.received == []


def test_other_400s_are_invalid_and_not_retried(apns_sender, apns_fake):
    (push,) = pushes(1)
    apns_fake.script(push.token, ["BadExpirationDate", "ok"])
    (outcome,) = apns_sender.send([push])
    assert (outcome.status, outcome.error, outcome.attempts) == ("invalid", "BadExpirationDate", 1)
    assert len(apns_fake.received) == 1


def test_too_many_requests_is_retried_with_backoff_then_sent(apns_sender, apns_fake):
    (push,) = pushes(1)
    apns_fake.script(push.token, ["TooManyRequests", "TooManyRequests", "ok"])
    (outcome,) = apns_sender.send([push])
    assert (outcome.status, outcome.attempts) == ("sent", 3)
    assert outcome.message_id
    first, second = apns_sender.slept
    assert BACKOFF_S <= first <= BACKOFF_S * 1.25
    assert 2 * BACKOFF_S <= second <= 2 * BACKOFF_S * 1.25  # exponential


@pytest.mark.parametrize("reason", ["InternalServerError", "ServiceUnavailable"])
def test_server_errors_are_retried_then_failed(apns_sender, apns_fake, reason):
    down, flaky = pushes(2)
    apns_fake.script(down.token, [reason])
    apns_fake.script(flaky.token, [reason, "ok"])
    outcome = by_key(apns_sender.send([down, flaky]))
    assert (outcome[0].status, outcome[0].error, outcome[0].attempts) == (
        "failed",
        reason,
        MAX_ATTEMPTS,
    )
    assert (outcome[1].status, outcome[1].attempts) == ("sent", 2)
    assert [r.token for r in apns_fake.received].count(down.token) == MAX_ATTEMPTS


def test_a_service_failing_n_times_is_retried_through(apns_sender, apns_fake):
    apns_fake.fail_next(3, "ServiceUnavailable")
    outcomes = apns_sender.send(pushes(3))
    assert [o.status for o in outcomes] == ["sent"] * 3
    assert len(apns_fake.delivered()) == 3


def test_a_slow_service_is_waited_for_concurrently(apns_fake, apns_sender):
    """50 pushes held 100 ms each: one after the other they would take 5 s."""
    apns_fake.delay_s = 0.1
    started = time.monotonic()
    outcomes = apns_sender.send(pushes(50))
    elapsed = time.monotonic() - started
    assert [o.status for o in outcomes] == ["sent"] * 50
    assert elapsed < 2.0, elapsed
    assert apns_fake.max_in_flight >= 25  # in flight together...
    assert apns_fake.connections == 1  # ...as streams of one connection


def test_concurrency_is_bounded(apns_fake, tmp_path):
    apns_fake.delay_s = 0.05
    sender = ApnsSender(
        str(apns_fake.key_file(tmp_path)),
        apns_fake.key_id,
        apns_fake.team_id,
        apns_fake.topic,
        endpoint=apns_fake.base_url,
        concurrency=5,
    )
    try:
        assert [o.status for o in sender.send(pushes(20))] == ["sent"] * 20
    finally:
        sender.close()
    assert apns_fake.max_in_flight == 5


def test_one_provider_token_serves_every_send_and_the_connection_stays(apns_sender, apns_fake):
    apns_sender.send(pushes(5))
    apns_sender.send(pushes(5))
    assert len(apns_fake.provider_tokens()) == 1
    assert apns_sender._token.signed == 1
    assert apns_fake.connections == 1  # kept open between sends, as Apple asks


def test_the_provider_token_is_renewed_before_an_hour_and_not_within_20_minutes(tmp_path):
    fake = fake_apns.FakeApns()
    now = [1_000_000.0]
    token = ProviderToken(
        load_key(fake.key_file(tmp_path)), "KEY1234567", "TEAM123456", lambda: now[0]
    )
    first = token.get()
    now[0] += 49 * 60
    assert token.get() == first  # reused
    assert token.expired(first) is True  # older than 20 min: a refusal renews it
    second = token.get()
    assert second != first
    now[0] += 5 * 60
    assert token.expired(second) is False  # 5 minutes old: never renewed (APNs would refuse)
    assert token.get() == second
    now[0] += 50 * 60
    assert token.get() != second  # 55 minutes old: renewed before APNs' hour


def test_an_expired_provider_token_is_renewed_and_the_push_sent(apns_fake, tmp_path):
    """APNs calls the token expired (its clock and ours disagree): a new one is signed once."""
    apns_fake.token_max_age_s = 30 * 60
    now = [time.time() - 40 * 60]
    sender = ApnsSender(
        str(apns_fake.key_file(tmp_path)),
        apns_fake.key_id,
        apns_fake.team_id,
        apns_fake.topic,
        endpoint=apns_fake.base_url,
        clock=lambda: now[0],
    )
    try:
        sender._token.get()  # signed 40 minutes ago
        now[0] = time.time()
        (outcome,) = sender.send(pushes(1))
    finally:
        sender.close()
    assert (outcome.status, outcome.attempts) == ("sent", 1)
    assert [r.answer for r in apns_fake.received] == ["ExpiredProviderToken", "ok"]
    assert len(apns_fake.provider_tokens()) == 2


@pytest.mark.parametrize("wrong", ["key", "key_id", "team_id"])
def test_bad_credentials_fail_every_push_and_are_logged(apns_fake, tmp_path, caplog, wrong):
    right_key = apns_fake.key_file(tmp_path)
    (tmp_path / "other").mkdir()
    other = fake_apns.FakeApns(key_id=apns_fake.key_id).key_file(tmp_path / "other")
    sender = ApnsSender(
        str(other if wrong == "key" else right_key),
        "WRONGKEY00" if wrong == "key_id" else apns_fake.key_id,
        "WRONGTEAM0" if wrong == "team_id" else apns_fake.team_id,
        apns_fake.topic,
        endpoint=apns_fake.base_url,
    )
    with caplog.at_level(logging.ERROR, logger=apns_module.__name__):
        try:
            outcomes = sender.send(pushes(3))
        finally:
            sender.close()
    assert {(o.status, o.error, o.attempts) for o in outcomes} == {
        ("failed", "InvalidProviderToken", 1)
    }
    assert any("APNs refused our credentials" in r.getMessage() for r in caplog.records)


def test_an_unreachable_service_is_retried_then_failed(apns_fake, tmp_path):
    slept = []

    async def sleep(seconds):
        slept.append(seconds)

    sender = ApnsSender(
        str(apns_fake.key_file(tmp_path)),
        apns_fake.key_id,
        apns_fake.team_id,
        apns_fake.topic,
        endpoint="http://127.0.0.1:9",  # discard: nothing listens
        sleep=sleep,
    )
    try:
        (outcome,) = sender.send(pushes(1))
    finally:
        sender.close()
    assert (outcome.status, outcome.error, outcome.attempts) == (
        "failed",
        "ConnectError",
        MAX_ATTEMPTS,
    )
    assert len(slept) == MAX_ATTEMPTS - 1


def test_a_key_that_is_not_p256_is_refused(tmp_path):
    path = tmp_path / "AuthKey_X.p8"
    path.write_text("not a key")
    with pytest.raises(ApnsKeyError):
        load_key(path)


def test_a_surprise_in_one_push_fails_that_push_only(apns_sender, apns_fake, monkeypatch, caplog):
    broken, fine = pushes(2)
    request = httpcore.AsyncConnectionPool.request

    async def sometimes(pool, method, url, **kwargs):
        if broken.token in str(url):
            raise RuntimeError("surprise")
        return await request(pool, method, url, **kwargs)

    monkeypatch.setattr(httpcore.AsyncConnectionPool, "request", sometimes)
    with caplog.at_level(logging.WARNING, logger=apns_module.__name__):
        outcome = by_key(apns_sender.send([broken, fine]))
    assert (outcome[0].status, outcome[0].error, outcome[0].attempts) == (
        "failed",
        "RuntimeError",
        1,
    )
    assert outcome[1].status == "sent"
    assert any("1 of 2 pushes failed" in r.getMessage() for r in caplog.records)
