"""SMS fallback of urgent tasks (issue #16; in tasks, the rule being a task's, on the SMS
senders and deliveries of notifications/): a volunteer offered an urgent task whose app has not
reported the push received (`notifications.received_at`) within SMS_FALLBACK_AFTER_S gets one
SMS.

The rule (`sms_allowed` and `claim`), all of it checked when the SMS is due, not when the task
was offered:
- only offers of a task of a kind in FALLBACK_KINDS (`urgent_assist`), still open and not over;
- only to a volunteer who gave the SMS consent (`users.sms_consent`; withdrawing it stops SMS
  not yet sent), whose account is active;
- at most SMS_DAILY_LIMIT SMS a volunteer a day, the day local to SERVICE_TIMEZONE
  (Asia/Shanghai); an SMS counts while pending and once sent or logged, not when it failed;
- quiet hours (SMS_QUIET_HOURS, local) hold back SMS of non-urgent kinds only: urgent kinds go
  at any hour. Every fallback kind is urgent today, so the quiet hours matter only if a
  non-urgent kind is ever added to FALLBACK_KINDS; the rule is kept here so that it is then
  right.
- at most one SMS per notification (a unique index), however often the job runs.

The timer is a job deferred with `schedule_in` in the transaction that writes the offers (the
fan-out), not a periodic sweep: the job is a row of procrastinate's table committed with the
notifications, so it exists if and only if they do, survives a worker restart (a worker that
starts later runs it late rather than never; a worker killed while running it is retried as
any stalled job), and fires SMS_FALLBACK_AFTER_S after the offer rather than up to a sweep
period later. A periodic sweep would survive a restart too, but procrastinate defers a missed
periodic tick only within its `max_delay`, and would scan every offer every minute.

The job works in two transactions: `claim` locks the due notifications and their volunteers
and writes the SMS as `pending` deliveries (a receipt arriving meanwhile waits for that short
transaction, then the notification is no longer due: no SMS), and commits; then
`send_pending` sends them and records each outcome. A receipt arriving after the claim does not
recall the SMS. A worker that dies between the two leaves pending SMS deliveries, which the
job's retry sends (the consent and the receipt are checked again first).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.auth.models import User
from app.core.jobs import defer, task
from app.extensions import db
from app.tasks.models import Task
from notifications import sms
from notifications.models import Delivery, Notification
from notifications.service import URGENT_KINDS

# Task kinds whose offers fall back to SMS.
FALLBACK_KINDS = frozenset({"urgent_assist"})
# SMS that count toward a volunteer's daily limit (a failed one did not reach them).
COUNTED = ("pending", "sent", "logged")
TITLE_CHARS = 20  # the template's {1}
_QUIET = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class QuietHours:
    start: dt.time
    end: dt.time  # may be before start: the hours run past midnight

    @classmethod
    def parse(cls, value: str) -> QuietHours | None:
        """ "22:00-07:00" -> QuietHours; "" -> None (no quiet hours)."""
        if not value:
            return None
        h1, m1, h2, m2 = map(int, _QUIET.fullmatch(value).groups())
        return cls(dt.time(h1, m1), dt.time(h2, m2))

    def contains(self, local: dt.time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def sms_allowed(task_kind: str, local: dt.time, quiet: QuietHours | None) -> bool:
    """May an offer of a task of `task_kind` fall back to SMS at local time `local`? Only the
    fallback kinds; urgent kinds at any hour, others never in the quiet hours."""
    if task_kind not in FALLBACK_KINDS:
        return False
    if task_kind in URGENT_KINDS:
        return True
    return quiet is None or not quiet.contains(local)


@dataclass(frozen=True)
class Settings:
    after_s: int
    daily_limit: int
    quiet: QuietHours | None
    timezone: ZoneInfo

    @classmethod
    def of(cls, config: dict[str, Any]) -> Settings:
        return cls(
            after_s=config["SMS_FALLBACK_AFTER_S"],
            daily_limit=config["SMS_DAILY_LIMIT"],
            quiet=QuietHours.parse(config["SMS_QUIET_HOURS"]),
            timezone=ZoneInfo(config["SERVICE_TIMEZONE"]),
        )


def schedule(task_row: Task, after_s: int) -> None:
    """After offers of `task_row` were written (in the same transaction): check them
    `after_s` from now. Nothing for kinds that never fall back."""
    if task_row.kind in FALLBACK_KINDS:
        defer(sms_fallback, schedule_in={"seconds": after_s}, task_id=str(task_row.id))


def claim(session: Session, task_id: uuid.UUID, now: dt.datetime, settings: Settings) -> int:
    """Write a pending SMS delivery for each offer of the task that is due one (the rule
    above); returns how many. The caller commits before sending them."""
    task_row = session.get(Task, task_id)
    # Only a task still taking volunteers: a filled one needs nobody more woken up by SMS.
    if task_row is None or task_row.lifecycle(now) != "open":
        return 0
    local = now.astimezone(settings.timezone)
    if not sms_allowed(task_row.kind, local.time(), settings.quiet):
        return 0
    has_sms = (
        select(Delivery.id)
        .where(Delivery.notification_id == Notification.id, Delivery.channel == "sms")
        .exists()
    )
    # Locked, in volunteer order (no deadlock with another task's job): a receipt or a consent
    # withdrawal committed while waiting for a lock takes the row out (the WHERE is checked
    # again on the new row), and two jobs cannot both take a volunteer's last SMS of the day.
    due = session.execute(
        select(Notification.id, Notification.user_id)
        .join(User, User.id == Notification.user_id)
        .where(
            Notification.subject_type == "task",
            Notification.subject_id == task_id,
            Notification.kind == "task_offered",
            Notification.received_at.is_(None),
            Notification.created_at <= now - dt.timedelta(seconds=settings.after_s),
            User.sms_consent.is_(True),
            User.status == "active",
            ~has_sms,
        )
        .order_by(Notification.user_id)
        .with_for_update(of=(Notification, User), key_share=True)
    ).all()
    if not due:
        return 0
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    sent_today = dict(
        session.execute(
            select(Notification.user_id, func.count())
            .join(Delivery, Delivery.notification_id == Notification.id)
            .where(
                Delivery.channel == "sms",
                Delivery.status.in_(COUNTED),
                Delivery.created_at >= day_start,
                Notification.user_id.in_({user_id for _, user_id in due}),
            )
            .group_by(Notification.user_id)
        ).all()
    )
    rows = []
    for notification_id, user_id in due:
        if sent_today.get(user_id, 0) >= settings.daily_limit:
            continue
        sent_today[user_id] = sent_today.get(user_id, 0) + 1
        rows.append(
            {
                "id": uuid.uuid4(),
                "notification_id": notification_id,
                "task_id": task_id,
                "channel": "sms",
                "status": "pending",
                "created_at": now,
            }
        )
    if not rows:
        return 0
    made = session.execute(
        insert(Delivery).values(rows).on_conflict_do_nothing().returning(Delivery.id)
    )
    return len(made.all())


def template_params(task_row: Task, timezone: ZoneInfo) -> tuple[str, ...]:
    """The SMS template's parameters: {1} the task's title (at most 20 characters), {2} when
    it ends, local HH:MM."""
    title = task_row.title if len(task_row.title) <= TITLE_CHARS else task_row.title[:19] + "…"
    return (title, task_row.ends_at.astimezone(timezone).strftime("%H:%M"))


def send_pending(
    session: Session, task_id: uuid.UUID, sender: sms.SmsSender, now: dt.datetime, tz: ZoneInfo
) -> dict[str, int]:
    """Send the task's pending SMS and record each outcome. One whose volunteer withdrew the
    consent, whose app reported the push meanwhile, or whose task closed is dropped unsent."""
    rows = session.execute(
        select(Delivery.id, User.phone, User.sms_consent, Notification.received_at)
        .join(Notification, Notification.id == Delivery.notification_id)
        .join(User, User.id == Notification.user_id)
        .where(Delivery.task_id == task_id, Delivery.channel == "sms", Delivery.status == "pending")
        .with_for_update(of=Delivery, skip_locked=True)
    ).all()
    task_row = session.get(Task, task_id)
    live = task_row is not None and task_row.lifecycle(now) == "open"
    dropped = [r.id for r in rows if not (live and r.sms_consent and r.received_at is None)]
    if dropped:
        session.execute(delete(Delivery).where(Delivery.id.in_(dropped)))
    messages = [
        sms.Sms(r.id, sms.e164(r.phone), template_params(task_row, tz))
        for r in rows
        if r.id not in dropped
    ]
    if not messages:
        return {}
    outcomes = sender.send(messages)
    session.execute(
        update(Delivery),
        [
            {
                "id": o.key,
                "status": o.status,
                "error": o.error,
                "attempts": o.attempts,
                "message_id": o.message_id,
                "sent_at": now if o.status == "sent" else None,
            }
            for o in outcomes
        ],
    )
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


def sms_sender() -> sms.SmsSender:
    """The application's SMS sender (made once per application)."""
    made = current_app.extensions.get("qunfang.sms_sender")
    if made is None:
        made = sms.make_sms_sender(current_app.config)
        current_app.extensions["qunfang.sms_sender"] = made
    return made


# Its name from before it moved from notifications/: SMS timers already deferred still fire.
@task(queue="push", retry=5, name="notifications.fallback.sms_fallback")
def sms_fallback(task_id: str) -> dict[str, int]:
    """SMS to the volunteers whose app has not reported an urgent task's push received."""
    settings = Settings.of(current_app.config)
    claim(db.session, uuid.UUID(task_id), _now(), settings)
    # The claim is kept before anything is sent (see the module's docstring).
    db.session.commit()
    return send_pending(db.session, uuid.UUID(task_id), sms_sender(), _now(), settings.timezone)
