"""The JPush sender (notifications/jpush.py, the official `jpush` SDK) against a local JPush
(tests/fakes/jpush.py): batches, one msg_id per batch, each error code's outcome, retries."""

from __future__ import annotations

import logging
import time

import pytest

from notifications import jpush as jpush_module
from notifications.jpush import BATCH, JPushSender
from notifications.push import BACKOFF_S, MAX_ATTEMPTS, Push


def pushes(count, *, title="南郎家园东门人员聚集", start=0, **values):
    return [
        Push(
            key=start + n,
            token=f"1a0018970a{start + n:09d}",
            title=title,
            body="请协助疏导",
            data={"kind": "task_offered", "task_id": "t-1"},
            **values,
        )
        for n in range(count)
    ]


def test_alike_pushes_go_as_one_batch_with_one_msg_id(jpush_sender, jpush_fake):
    outcomes = jpush_sender.send(pushes(5))
    (request,) = jpush_fake.received
    assert request.registration_ids == [f"1a0018970a{n:09d}" for n in range(5)]
    assert {(o.status, o.message_id, o.attempts) for o in outcomes} == {("sent", request.msg_id, 1)}
    body = request.body
    assert body["platform"] == "all"
    android = body["notification"]["android"]
    assert (android["title"], android["alert"], android["priority"]) == (
        "南郎家园东门人员聚集",
        "请协助疏导",
        0,
    )
    assert android["extras"] == {"kind": "task_offered", "task_id": "t-1"}
    ios = body["notification"]["ios"]
    assert ios["alert"] == {"title": "南郎家园东门人员聚集", "body": "请协助疏导"}
    assert ios["interruption-level"] == "active"
    assert "sound" not in ios
    assert body["options"]["time_to_live"] == 3600


def test_urgent_pushes_are_high_priority_and_time_sensitive(jpush_sender, jpush_fake):
    jpush_sender.send(pushes(1, urgent=True))
    notification = jpush_fake.received[0].body["notification"]
    assert notification["android"]["priority"] == 2
    assert notification["ios"]["interruption-level"] == "time-sensitive"
    assert notification["ios"]["sound"] == "default"


def test_batches_hold_at_most_1000_registration_ids(jpush_sender, jpush_fake):
    outcomes = jpush_sender.send(pushes(2 * BATCH + 500))
    sizes = sorted(len(r.registration_ids) for r in jpush_fake.received)
    assert sizes == [500, BATCH, BATCH]
    assert [o.status for o in outcomes] == ["sent"] * (2 * BATCH + 500)
    assert len({o.message_id for o in outcomes}) == 3  # one msg_id per batch


def test_different_contents_go_in_different_pushes(jpush_sender, jpush_fake):
    outcomes = jpush_sender.send(pushes(2, title="A") + pushes(3, title="B", start=2))
    assert sorted(len(r.registration_ids) for r in jpush_fake.received) == [2, 3]
    assert [o.key for o in outcomes] == [0, 1, 2, 3, 4]  # in the order given
    titles = {r.body["notification"]["android"]["title"] for r in jpush_fake.received}
    assert titles == {"A", "B"}


def test_no_known_registration_id_is_unregistered(jpush_sender, jpush_fake):
    gone = pushes(2)
    jpush_fake.forget(*(p.token for p in gone))
    outcomes = jpush_sender.send(gone)
    assert {(o.status, o.attempts) for o in outcomes} == {("unregistered", 1)}
    assert {o.error for o in outcomes} == {"1011"}  # JPush's code, as stored
    assert len(jpush_fake.received) == 1  # not retried


def test_a_rate_limit_is_waited_out_then_sent(jpush_sender, jpush_fake):
    jpush_fake.reset_s = 2
    jpush_fake.fail_next([(429, 2002)])
    outcomes = jpush_sender.send(pushes(3))
    assert {(o.status, o.attempts) for o in outcomes} == {("sent", 2)}
    (waited,) = jpush_sender.slept
    assert 2 <= waited <= 2 * 1.25  # X-Rate-Limit-Reset, not the shorter back-off


@pytest.mark.parametrize("answer", [(503, 1000), (500, 1030), (400, 2008)])
def test_server_errors_and_push_rate_are_retried(jpush_sender, jpush_fake, answer):
    jpush_fake.fail_next([answer, answer])
    outcomes = jpush_sender.send(pushes(2))
    assert {(o.status, o.attempts) for o in outcomes} == {("sent", 3)}
    first, second = jpush_sender.slept
    assert BACKOFF_S <= first < second  # exponential


def test_server_errors_that_last_fail_after_the_attempts(jpush_sender, jpush_fake):
    jpush_fake.fail_next([(503, 1000)] * MAX_ATTEMPTS)
    outcomes = jpush_sender.send(pushes(2))
    assert {(o.status, o.attempts) for o in outcomes} == {("failed", MAX_ATTEMPTS)}
    assert outcomes[0].error == "1000"
    assert len(jpush_fake.received) == MAX_ATTEMPTS


def test_a_parameter_error_is_invalid_and_not_retried(jpush_sender, jpush_fake):
    jpush_fake.fail_next([(400, 1003)])
    outcomes = jpush_sender.send(pushes(2))
    assert {(o.status, o.attempts) for o in outcomes} == {("invalid", 1)}
    assert outcomes[0].error == "1003"
    assert len(jpush_fake.received) == 1


def test_bad_credentials_fail_loudly_and_are_not_retried(jpush_fake, caplog):
    sender = JPushSender(
        app_key=jpush_fake.app_key, master_secret="wrong" * 5, endpoint=jpush_fake.base_url
    )
    with caplog.at_level(logging.ERROR, logger=jpush_module.__name__):
        outcomes = sender.send(pushes(3))
    assert {(o.status, o.attempts) for o in outcomes} == {("failed", 1)}
    assert outcomes[0].error == "1004"
    assert jpush_fake.refused_auth == 1
    assert any("JPush refused our credentials" in r.getMessage() for r in caplog.records)


def test_a_slow_service_is_waited_for_a_few_batches_at_a_time(jpush_fake, jpush_sender):
    """50 different pushes (50 requests) held 100 ms each: 5 s one after the other."""
    jpush_fake.delay_s = 0.1
    started = time.monotonic()
    outcomes = jpush_sender.send(
        [p for n in range(50) for p in pushes(1, title=f"任务 {n}", start=n)]
    )
    elapsed = time.monotonic() - started
    assert [o.status for o in outcomes] == ["sent"] * 50
    assert elapsed < 3.5, elapsed
    assert jpush_fake.max_in_flight == jpush_module.CONCURRENCY


def test_an_unreachable_service_is_retried_then_failed():
    slept = []
    sender = JPushSender("k" * 24, "s" * 24, endpoint="http://127.0.0.1:9", sleep=slept.append)
    (outcome,) = sender.send(pushes(1))
    assert (outcome.status, outcome.attempts) == ("failed", MAX_ATTEMPTS)
    assert len(slept) == MAX_ATTEMPTS - 1


def test_a_ttl_past_jpush_s_10_days_is_capped_and_sandbox_is_development(jpush_fake):
    sender = JPushSender(
        jpush_fake.app_key,
        jpush_fake.master_secret,
        endpoint=jpush_fake.base_url,
        apns_production=False,
    )
    sender.send(pushes(1, ttl_s=30 * 24 * 3600))
    options = jpush_fake.received[0].body["options"]
    assert options == {"time_to_live": jpush_module.MAX_TTL_S, "apns_production": False}
