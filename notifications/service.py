"""Notifications: the feed rows, their pushes to every device of the user, and the send job.

`notify` writes the notification rows and one pending delivery per (notification, device) in
the caller's transaction, and defers the send jobs in it too: a push goes out if and only if
the work that caused it commits. The send job pushes through each device's provider's sender
(notifications/push.py), the providers concurrently, records each delivery's outcome and
deletes devices their provider called unregistered. Pushes are best effort; the feed
(`GET /api/v1/me/notifications`) is the truth.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import current_app
from sqlalchemy import DateTime, Integer, String, bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import Session
from sqlalchemy.types import Uuid

from app.core.errors import NotFound
from app.core.i18n import DEFAULT_LOCALE, N_, _, force_locale, translated
from app.core.jobs import defer, task
from app.extensions import db
from notifications import push
from notifications.models import Delivery, Device, Notification

SEND_CHUNK = push.CHUNK

# The language of pushes: accounts store no language preference, and the volunteers read
# Chinese. (A preference would be a column on users, passed to `force_locale` in `send`.)
PUSH_LOCALE = DEFAULT_LOCALE

# A tip's status as its tipster reads it in a push.
_TIP_STATUS_LABELS = {
    "submitted": N_("submitted"),
    "triaged": N_("triaged"),
    "assigned": N_("assigned"),
    "in_progress": N_("in progress"),
    "resolved": N_("resolved"),
    "rejected": N_("rejected"),
    "referred_to_police": N_("referred to the police"),
    "merged": N_("merged"),
}


def _tip_status(d: dict[str, Any]) -> str:
    status = d.get("to_status") or d.get("status") or ""
    return translated(_TIP_STATUS_LABELS[status]) if status in _TIP_STATUS_LABELS else status


# Notification kinds and how each reads on a phone: (title, body) from the notification's data,
# in the current locale. Kinds not listed are kept in the feed without a push.
_TEXTS = {
    "task_offered": lambda d: (d.get("title") or _("New task"), d.get("summary") or ""),
    "task_cancelled": lambda d: (
        _("Task cancelled: %(title)s", title=d.get("title") or ""),
        d.get("reason") or "",
    ),
    "checkpoint_missed": lambda d: (
        _("Checkpoint missed: %(name)s", name=d.get("name") or ""),
        f"{d.get('starts_at', '')[11:16]}-{d.get('ends_at', '')[11:16]} UTC "
        f"{d.get('visits', 0)}/{d.get('expected_visits', 1)}",
    ),
    "tip_status": lambda d: (_("Tip update"), _("Status: %(status)s", status=_tip_status(d))),
    "tip_note": lambda d: (_("Tip update"), _("Staff replied to your tip")),
}
URGENT_KINDS = frozenset({"urgent_assist"})


def sender(provider: str = "fcm"):
    """The application's sender for `provider` (made once per application), kept as
    `qunfang.push_sender` (fcm) or `qunfang.push_sender.<provider>` in its extensions."""
    name = "qunfang.push_sender" if provider == "fcm" else f"qunfang.push_sender.{provider}"
    made = current_app.extensions.get(name)
    if made is None:
        made = push.make_sender(current_app.config, provider)
        current_app.extensions[name] = made
    return made


# -- devices -------------------------------------------------------------------------------------


def register_device(session: Session, user_id: uuid.UUID, values: dict[str, Any]) -> Device:
    """Register (or refresh) a token for the caller; a token another account had moves."""
    now = dt.datetime.now(dt.UTC)
    statement = (
        insert(Device)
        .values(
            id=uuid.uuid4(),
            user_id=user_id,
            token=values["token"],
            platform=values["platform"],
            provider=values.get("provider", "fcm"),
            app_version=values.get("app_version"),
            last_seen_at=now,
        )
        .on_conflict_do_update(
            index_elements=[Device.token],
            set_={
                "user_id": user_id,
                "platform": values["platform"],
                "provider": values.get("provider", "fcm"),
                "app_version": values.get("app_version"),
                "last_seen_at": now,
            },
        )
        .returning(Device.id)
    )
    device_id = session.execute(statement).scalar_one()
    session.expire_all()
    return session.get(Device, device_id)


def remove_device(session: Session, user_id: uuid.UUID, token: str) -> None:
    removed = session.execute(
        delete(Device).where(Device.user_id == user_id, Device.token == token)
    ).rowcount
    if not removed:
        raise NotFound(_("No such device."))


# -- notifying -----------------------------------------------------------------------------------

_NOTIFY_SQL = text(
    """
    WITH made AS (
        INSERT INTO notifications (id, user_id, kind, subject_type, subject_id, data)
        SELECT gen_random_uuid(), u, :kind, :subject_type, :subject_id, CAST(:data AS jsonb)
        FROM unnest(:user_ids) AS u
        RETURNING id, user_id
    )
    INSERT INTO deliveries (id, notification_id, device_id, task_id, status)
    SELECT gen_random_uuid(), made.id, d.id, :task_id, 'pending'
    FROM made JOIN devices d ON d.user_id = made.user_id
    RETURNING id
    """
).bindparams(
    bindparam("user_ids", type_=ARRAY(Uuid)),
    bindparam("subject_id", type_=Uuid),
    bindparam("task_id", type_=Uuid),
)


def notify(
    session: Session,
    user_ids: Sequence[uuid.UUID],
    kind: str,
    subject_type: str,
    subject_id: uuid.UUID,
    data: dict[str, Any],
    *,
    task_id: uuid.UUID | None = None,
) -> int:
    """A notification for each user, a delivery for each of their devices, and the jobs that
    send them (all in the caller's transaction). Returns the number of deliveries."""
    if not user_ids:
        return 0
    deliveries = (
        session.execute(
            _NOTIFY_SQL,
            {
                "user_ids": list(user_ids),
                "kind": kind,
                "subject_type": subject_type,
                "subject_id": subject_id,
                "data": json.dumps(data, ensure_ascii=False, default=str),
                "task_id": task_id,
            },
        )
        .scalars()
        .all()
    )
    if kind in _TEXTS:
        defer_sends(deliveries)
    return len(deliveries)


def defer_sends(delivery_ids: Sequence[uuid.UUID]) -> None:
    for start in range(0, len(delivery_ids), SEND_CHUNK):
        chunk = delivery_ids[start : start + SEND_CHUNK]
        defer(send_deliveries, delivery_ids=[str(i) for i in chunk])


# -- sending -------------------------------------------------------------------------------------


def push_texts(kind: str, data: dict[str, Any], locale: str = PUSH_LOCALE) -> tuple[str, str]:
    """The (title, body) of a push of `kind`, in `locale`."""
    with force_locale(locale):
        return _TEXTS[kind](data)


def _contents(kind: str, data: dict[str, Any]) -> tuple[str, str, dict[str, str], bool]:
    """The (title, body, data payload, urgent) of a push of `kind` about `data`."""
    title, body = push_texts(kind, data)
    payload = {
        "kind": kind,
        **{k: str(v) for k, v in data.items() if k in ("task_id", "tip_id", "checkpoint_id")},
        **({"subject_id": str(data["subject_id"])} if "subject_id" in data else {}),
    }
    title, body = push.fit(title, body, payload)
    return title, body, payload, data.get("task_kind") in URGENT_KINDS


def send(session: Session, delivery_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """Push the pending deliveries among `delivery_ids` and record what the providers
    answered."""
    rows = session.execute(
        select(Delivery.id, Device.token, Notification.kind, Notification.data, Device.provider)
        .join(Device, Device.id == Delivery.device_id)
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(Delivery.id.in_(delivery_ids), Delivery.status == "pending")
        .with_for_update(of=Delivery, skip_locked=True)
    ).all()
    by_provider: dict[str, list[push.Push]] = {}
    # A task's offers all read the same: their texts are made (translated, fitted) once a
    # send, not once a delivery.
    made: dict[tuple[str, str], tuple[str, str, dict[str, str], bool]] = {}
    for d, token, kind, data, provider in rows:
        if kind in _TEXTS:
            key = (kind, json.dumps(data, sort_keys=True, default=str))
            contents = made.get(key)
            if contents is None:
                contents = made[key] = _contents(kind, data)
            title, body, payload, urgent = contents
            by_provider.setdefault(provider, []).append(
                push.Push(d, token, title, body, payload, urgent)
            )
    if not by_provider:
        return {}
    # Each device through its own provider (an APNs or JPush token means nothing to FCM), the
    # providers at once: a chunk takes as long as its slowest provider, not their sum.
    senders = {provider: sender(provider) for provider in by_provider}  # needs the app context
    outcomes: list[push.Outcome] = []
    if len(by_provider) == 1:
        ((provider, pushes),) = by_provider.items()
        outcomes = senders[provider].send(pushes)
    else:
        with ThreadPoolExecutor(len(by_provider), thread_name_prefix="push") as pool:
            sends = [pool.submit(senders[p].send, pushes) for p, pushes in by_provider.items()]
            for sent in sends:
                outcomes += sent.result()
    now = dt.datetime.now(dt.UTC)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    session.execute(
        _RECORD_SQL,
        {
            "ids": [o.key for o in outcomes],
            "statuses": [o.status for o in outcomes],
            "errors": [o.error for o in outcomes],
            "attempts": [o.attempts for o in outcomes],
            "message_ids": [o.message_id for o in outcomes],
            "now": now,
        },
    )
    tokens = {delivery_id: token for delivery_id, token, *_ in rows}
    dead = [tokens[o.key] for o in outcomes if o.status == "unregistered"]
    if dead:
        session.execute(delete(Device).where(Device.token.in_(dead)))
    return counts


# Every outcome of a send in one statement: an UPDATE a delivery (the ORM's bulk update by
# primary key) was 500 statements a chunk, each parsed, planned and answered on its own.
_RECORD_SQL = text(
    """
    UPDATE deliveries SET status = o.status, error = o.error, attempts = o.attempts,
        message_id = o.message_id, sent_at = CASE WHEN o.status = 'sent' THEN :now END
    FROM unnest(:ids, :statuses, :errors, :attempts, :message_ids)
        AS o(id, status, error, attempts, message_id)
    WHERE deliveries.id = o.id
    """
).bindparams(
    bindparam("ids", type_=ARRAY(Uuid)),
    bindparam("statuses", type_=ARRAY(String)),
    bindparam("errors", type_=ARRAY(String)),
    bindparam("attempts", type_=ARRAY(Integer)),
    bindparam("message_ids", type_=ARRAY(String)),
    bindparam("now", type_=DateTime(timezone=True)),
)


@task(queue="push", retry=5)
def send_deliveries(delivery_ids: list[str]) -> dict[str, int]:
    """Push a chunk of deliveries (at most 500)."""
    return send(db.session, [uuid.UUID(i) for i in delivery_ids])
