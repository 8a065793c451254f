"""The SMS fallback of urgent tasks (issue #16): who gets an SMS, when, and what is recorded."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text, update

from app.tasks import fallback
from notifications.models import Delivery, Notification
from tests.notifications.conftest import now

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _notification(session, user, task) -> Notification:
    session.expire_all()
    return session.scalars(
        select(Notification).where(
            Notification.user_id == user.id, Notification.subject_id == uuid.UUID(task["id"])
        )
    ).one()


def _receive(client, token_for, session, user, task):
    mine = _notification(session, user, task)
    response = client.post(f"/api/v1/me/notifications/{mine.id}/received", headers=token_for(user))
    assert response.status_code == 200


def _next_utc(hour: int, minute: int) -> dt.datetime:
    """The next such UTC time at least 10 minutes from now (notifications written now are then
    older than SMS_FALLBACK_AFTER_S)."""
    at = now().replace(hour=hour, minute=minute, second=0, microsecond=0)
    while at < now() + dt.timedelta(minutes=10):
        at += dt.timedelta(days=1)
    return at


def _long_task(urgent_task, **body):
    return urgent_task(ends_at=(now() + dt.timedelta(days=3)).isoformat(), **body)


def test_an_unreceived_urgent_offer_gets_one_sms_recorded_as_sent(
    sms_volunteer, urgent_task, fan_out, run_fallback, sms_rows, tencent, client, token_for, staff
):
    volunteer = sms_volunteer(30)
    task = urgent_task(title="南郎家园东门有老人摔倒, 需要懂急救的志愿者立即前往")
    fan_out(task)
    assert run_fallback(task) == {"sent": 1}

    (request,) = tencent.received
    assert request.phones == [f"+86{volunteer.phone}"]
    ends = dt.datetime.fromisoformat(task["ends_at"]).astimezone(SHANGHAI).strftime("%H:%M")
    assert request.body["TemplateParamSet"] == ["南郎家园东门有老人摔倒, 需要懂急救的…", ends]
    assert (request.body["TemplateId"], request.body["SignName"]) == ("2000001", "群防")
    (row,) = sms_rows(task)
    assert (row.status, row.device_id, row.attempts) == ("sent", None, 1)
    assert row.message_id.startswith("2433:") and row.sent_at is not None

    # Staff count SMS apart from pushes (the push went to the log: no FCM credentials here).
    client.post(
        f"/api/v1/tasks/{task['id']}/responses",
        json={"action": "decline"},
        headers=token_for(volunteer),
    )
    stats = client.get(f"/api/v1/tasks/{task['id']}", headers=token_for(staff)).json["statistics"]
    assert stats["deliveries"] == {"logged": 1}
    assert stats["sms"] == {"sent": 1}

    assert run_fallback(task) == {}  # the job again (a retry, the next phase's): no second SMS
    assert len(tencent.received) == 1


def test_a_received_offer_gets_no_sms(
    sms_volunteer, urgent_task, fan_out, run_fallback, sms_rows, tencent, client, token_for, session
):
    received, silent = sms_volunteer(30), sms_volunteer(40)
    task = urgent_task()
    fan_out(task)
    _receive(client, token_for, session, received, task)
    assert run_fallback(task) == {"sent": 1}
    assert [r.phones for r in tencent.received] == [[f"+86{silent.phone}"]]
    assert len(sms_rows(task)) == 1


def test_the_timer_is_sms_fallback_after_s_from_the_offer(
    sms_volunteer, urgent_task, fan_out, claim, session, monkeypatch, app
):
    monkeypatch.setitem(app.config, "SMS_FALLBACK_AFTER_S", 90)
    volunteer = sms_volunteer(30)
    task = urgent_task()
    fan_out(task)
    offered = _notification(session, volunteer, task).created_at
    assert claim(task, at=offered + dt.timedelta(seconds=89)) == 0
    assert claim(task, at=offered + dt.timedelta(seconds=90)) == 1


def test_a_receipt_just_before_the_timer_means_no_sms(
    sms_volunteer, urgent_task, fan_out, claim, send, sms_rows, tencent, session
):
    volunteer = sms_volunteer(30)
    task = urgent_task()
    fan_out(task)
    offered = _notification(session, volunteer, task).created_at
    due = offered + dt.timedelta(seconds=60)
    session.execute(
        update(Notification)
        .where(Notification.user_id == volunteer.id)
        .values(received_at=due - dt.timedelta(milliseconds=1))
    )
    assert claim(task, at=due) == 0
    assert send(task, at=due) == {}
    assert tencent.received == [] and sms_rows(task) == []


def test_a_receipt_between_claim_and_send_drops_the_sms(
    sms_volunteer, urgent_task, fan_out, claim, send, sms_rows, tencent, client, token_for, session
):
    """The worker died after claiming, or the receipt came in the moment between: the
    pending SMS is dropped, not sent."""
    volunteer = sms_volunteer(30)
    task = urgent_task()
    fan_out(task)
    assert claim(task) == 1
    _receive(client, token_for, session, volunteer, task)
    assert send(task) == {}
    assert tencent.received == [] and sms_rows(task) == []


def test_a_receipt_just_after_the_sms_is_kept_and_the_sms_stays_recorded(
    sms_volunteer, urgent_task, fan_out, run_fallback, sms_rows, client, token_for, session, staff
):
    volunteer = sms_volunteer(30)
    task = urgent_task()
    fan_out(task)
    assert run_fallback(task) == {"logged": 1}  # no SMS credentials: the logging sender
    _receive(client, token_for, session, volunteer, task)
    assert _notification(session, volunteer, task).received_at is not None
    assert [r.status for r in sms_rows(task)] == ["logged"]


def test_a_receipt_waiting_on_the_claims_lock_means_no_sms(
    sms_volunteer, urgent_task, fan_out, session, app
):
    """The claim locks the notification and re-checks it: the row the receipt changed is seen
    (READ COMMITTED re-evaluates a locked row's WHERE), so a receipt committed while the claim
    waited for it stops the SMS. Shown here in one transaction, the receipt flushed first."""
    volunteer = sms_volunteer(30)
    task = urgent_task()
    fan_out(task)
    mine = _notification(session, volunteer, task)
    mine.received_at = now()
    session.flush()
    settings = fallback.Settings.of(app.config)
    at = now() + dt.timedelta(seconds=61)
    assert fallback.claim(session, uuid.UUID(task["id"]), at, settings) == 0


def test_no_consent_no_sms(sms_volunteer, urgent_task, fan_out, run_fallback, tencent, sms_rows):
    sms_volunteer(30, consent=False)
    task = urgent_task()
    fan_out(task)
    assert run_fallback(task) == {}
    assert tencent.received == [] and sms_rows(task) == []


def test_withdrawing_the_consent_stops_an_sms_not_yet_sent(
    sms_volunteer, urgent_task, fan_out, claim, send, tencent, sms_rows, client, token_for
):
    volunteer = sms_volunteer(30)
    task = urgent_task()
    fan_out(task)
    assert claim(task) == 1
    withdrawn = client.patch(
        "/api/v1/me", json={"sms_consent": False}, headers=token_for(volunteer)
    )
    assert withdrawn.status_code == 200
    assert send(task) == {}
    assert tencent.received == [] and sms_rows(task) == []


def test_a_non_urgent_task_gets_no_sms_and_no_fallback_job(
    sms_volunteer, create_task, urgent_task, fan_out, run_fallback, connection, tencent
):
    def fallback_jobs():
        query = "SELECT scheduled_at FROM procrastinate_jobs WHERE task_name LIKE '%sms_fallback'"
        return connection.execute(text(query)).scalars().all()

    sms_volunteer(30)
    calm = create_task(kind="event_support")
    fan_out(calm)
    assert fallback_jobs() == []
    assert run_fallback(calm) == {}  # and were the job run for it anyway: nothing
    assert tencent.received == []

    urgent = urgent_task()
    fan_out(urgent)
    (scheduled_at,) = fallback_jobs()
    assert abs((scheduled_at - now()).total_seconds() - 60) < 30  # SMS_FALLBACK_AFTER_S


def test_a_cancelled_task_sends_no_sms(
    sms_volunteer, urgent_task, fan_out, run_fallback, tencent, client, token_for, staff
):
    sms_volunteer(30)
    task = urgent_task()
    fan_out(task)
    etag = client.get(f"/api/v1/tasks/{task['id']}", headers=token_for(staff)).headers["ETag"]
    cancelled = client.post(
        f"/api/v1/tasks/{task['id']}/cancel",
        json={"reason": "已处理"},
        headers={**token_for(staff), "If-Match": etag},
    )
    assert cancelled.status_code == 200, cancelled.json
    assert run_fallback(task) == {}
    assert tencent.received == []


def test_a_filled_task_sends_no_sms(
    sms_volunteer, urgent_task, fan_out, run_fallback, tencent, sms_rows, client, token_for
):
    """Once enough volunteers accepted, nobody more is woken up by an SMS."""
    first, silent = sms_volunteer(30), sms_volunteer(40)
    task = urgent_task(needed=1)
    fan_out(task)
    accepted = client.post(
        f"/api/v1/tasks/{task['id']}/responses",
        json={"action": "accept"},
        headers=token_for(first),
    )
    assert accepted.status_code == 200, accepted.json
    assert run_fallback(task) == {}
    assert tencent.received == [] and sms_rows(task) == []
    assert silent.phone  # had the task stayed open, this volunteer would have had the SMS


def test_at_most_sms_daily_limit_a_volunteer_a_day(
    sms_volunteer, urgent_task, fan_out, run_fallback, sms_rows, tencent, monkeypatch, app
):
    monkeypatch.setitem(app.config, "SMS_DAILY_LIMIT", 3)
    volunteer = sms_volunteer(30)
    tasks = [urgent_task(title=f"紧急任务{n}") for n in range(4)]
    for task in tasks:
        fan_out(task)
    outcomes = [run_fallback(task) for task in tasks]
    assert outcomes == [{"sent": 1}, {"sent": 1}, {"sent": 1}, {}]
    assert tencent.delivered() == [f"+86{volunteer.phone}"] * 3
    assert sms_rows(tasks[3]) == []


def test_a_failed_sms_does_not_count_toward_the_daily_limit(
    sms_volunteer, urgent_task, fan_out, run_fallback, tencent, monkeypatch, app
):
    monkeypatch.setitem(app.config, "SMS_DAILY_LIMIT", 1)
    volunteer = sms_volunteer(30)
    first, second = urgent_task(title="一"), urgent_task(title="二")
    fan_out(first)
    fan_out(second)
    tencent.fail_next(["InternalError"] * 3)
    assert run_fallback(first) == {"failed": 1}
    assert run_fallback(second) == {"sent": 1}
    assert tencent.delivered() == [f"+86{volunteer.phone}"]


def test_the_daily_limit_counts_days_in_shanghai_not_utc(
    sms_volunteer, urgent_task, fan_out, run_fallback, sms_rows, session, monkeypatch, app
):
    """Three SMS at 23:59 in Beijing (15:59 UTC); at 00:01 (16:01 UTC, still the same UTC day)
    the volunteer's new day has begun."""
    monkeypatch.setitem(app.config, "SMS_DAILY_LIMIT", 3)
    sms_volunteer(30)
    earlier = [_long_task(urgent_task, title=f"昨天{n}") for n in range(3)]
    for task in earlier:
        fan_out(task)
        assert run_fallback(task) == {"logged": 1}
    late_evening = _next_utc(15, 59)
    session.execute(
        update(Delivery)
        .where(Delivery.task_id.in_([uuid.UUID(t["id"]) for t in earlier]))
        .values(created_at=late_evening)
    )
    task = _long_task(urgent_task, title="今天")
    fan_out(task)
    assert run_fallback(task, at=late_evening + dt.timedelta(seconds=30)) == {}
    assert run_fallback(task, at=late_evening + dt.timedelta(minutes=2)) == {"logged": 1}


def test_urgent_tasks_send_sms_in_the_quiet_hours(
    sms_volunteer, urgent_task, fan_out, run_fallback, monkeypatch, app
):
    monkeypatch.setitem(app.config, "SMS_QUIET_HOURS", "22:00-07:00")
    sms_volunteer(30)
    task = _long_task(urgent_task)
    fan_out(task)
    at_night = _next_utc(15, 0)  # 23:00 in Beijing
    assert run_fallback(task, at=at_night) == {"logged": 1}


def test_quiet_hours_hold_back_the_sms_of_a_non_urgent_fallback_kind(
    sms_volunteer, create_task, fan_out, run_fallback, monkeypatch, app
):
    """No non-urgent kind falls back today; were one added, the quiet hours would apply to it."""
    monkeypatch.setattr(fallback, "FALLBACK_KINDS", frozenset({"urgent_assist", "event_support"}))
    monkeypatch.setitem(app.config, "SMS_QUIET_HOURS", "22:00-07:00")
    sms_volunteer(30)
    task = create_task(kind="event_support", ends_at=(now() + dt.timedelta(days=3)).isoformat())
    fan_out(task)
    assert run_fallback(task, at=_next_utc(15, 0)) == {}  # 23:00 in Beijing
    assert run_fallback(task, at=_next_utc(4, 0)) == {"logged": 1}  # 12:00


@pytest.mark.parametrize(
    ("kind", "local", "allowed"),
    [
        ("urgent_assist", dt.time(23, 0), True),
        ("urgent_assist", dt.time(3, 0), True),
        ("urgent_assist", dt.time(12, 0), True),
        ("event_support", dt.time(12, 0), False),  # not a fallback kind at all
        ("patrol", dt.time(23, 0), False),
    ],
)
def test_sms_allowed_rule(kind, local, allowed):
    quiet = fallback.QuietHours.parse("22:00-07:00")
    assert fallback.sms_allowed(kind, local, quiet) is allowed


@pytest.mark.parametrize(
    ("hours", "local", "inside"),
    [
        ("22:00-07:00", dt.time(21, 59), False),
        ("22:00-07:00", dt.time(22, 0), True),
        ("22:00-07:00", dt.time(0, 0), True),
        ("22:00-07:00", dt.time(6, 59), True),
        ("22:00-07:00", dt.time(7, 0), False),
        ("13:00-14:30", dt.time(13, 30), True),
        ("13:00-14:30", dt.time(14, 30), False),
        ("13:00-14:30", dt.time(12, 59), False),
    ],
)
def test_quiet_hours_run_past_midnight(hours, local, inside):
    assert fallback.QuietHours.parse(hours).contains(local) is inside


def test_no_quiet_hours_when_empty():
    assert fallback.QuietHours.parse("") is None


def test_sms_timers_deferred_before_the_move_to_tasks_still_fire():
    """SMS timers are jobs deferred a minute ahead: one queued by a release where the rule
    lived in notifications/ carries that name, and must still find its job."""
    from app.core.jobs import jobs

    assert jobs.tasks["notifications.fallback.sms_fallback"] is fallback.sms_fallback
