"""Alerts that were only stored before tasks existed are pushed now."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, text

from app.patrols import checkpoints as checkpoints_service
from app.patrols.models import Checkpoint
from notifications.models import Delivery, Notification
from tests.tasks.conftest import HOME


def send_jobs(connection) -> int:
    return connection.execute(
        text("SELECT count(*) FROM procrastinate_jobs WHERE task_name LIKE '%send_deliveries'")
    ).scalar_one()


def test_a_missed_checkpoint_window_is_pushed_to_the_responsible_staff(
    client, token_for, staff, session, connection
):
    client.post(
        "/api/v1/devices",
        json={"token": "staff-phone-" + "x" * 20, "platform": "ios"},
        headers=token_for(staff),
    )
    body = {
        "name": "推送测试点",
        "location": {"lon": HOME[0], "lat": HOME[1]},
        "schedule": {"windows": [{"start": "08:00", "end": "09:00"}]},
    }
    made = client.post("/api/v1/checkpoints", json=body, headers=token_for(staff)).json
    checkpoint = session.get(Checkpoint, uuid.UUID(made["id"]))
    now = dt.datetime.now(dt.UTC)
    checkpoint.windows_judged_until = now - dt.timedelta(days=2)
    session.flush()
    assert checkpoints_service.judge_windows(session, now, dt.timedelta(0)) >= 1
    alert = session.scalars(
        select(Notification).where(Notification.subject_id == checkpoint.id)
    ).first()
    assert alert.kind == "checkpoint_missed" and alert.user_id == staff.id
    assert (
        session.scalar(select(Delivery.status).where(Delivery.notification_id == alert.id))
        == "pending"
    )
    assert send_jobs(connection) >= 1


def test_a_tip_status_change_is_pushed_to_its_named_reporter(
    client, token_for, create_user, session, connection
):
    reporter = create_user(roles=["volunteer"], home="110105001024")
    client.post(
        "/api/v1/devices",
        json={"token": "reporter-phone-" + "x" * 20, "platform": "android"},
        headers=token_for(reporter),
    )
    tip = client.post(
        "/api/v1/tips",
        json={
            "category": "traffic",
            "description": "路口信号灯坏了",
            "location": {"lon": HOME[0], "lat": HOME[1]},
        },
        headers=token_for(reporter),
    ).json
    staff = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    read = client.get(f"/api/v1/tips/{tip['id']}", headers=token_for(staff))
    moved = client.post(
        f"/api/v1/tips/{tip['id']}/transitions",
        json={"to": "triaged"},
        headers={**token_for(staff), "If-Match": read.headers["ETag"]},
    )
    assert moved.status_code == 200, moved.json
    note = session.scalars(
        select(Notification).where(
            Notification.user_id == reporter.id, Notification.kind == "tip_status"
        )
    ).one()
    assert (
        session.scalar(select(Delivery.status).where(Delivery.notification_id == note.id))
        == "pending"
    )
    assert send_jobs(connection) >= 1
