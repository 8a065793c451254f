"""Retention jobs (app/privacy/retention.py): each removes what is past its period and nothing
else; a row just inside the limit stays."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select, update

from app.auth.models import AuthSession, RefreshToken
from app.config import RETENTION_DAYS, Config, ConfigError
from app.core import jobs as jobs_module
from app.core.audit import AuditEvent
from app.core.errors import NotFound
from app.exports import service as exports
from app.exports.models import ClueBatch
from app.media.models import Media
from app.media.service import storage
from app.privacy import jobs as privacy_jobs
from app.privacy import retention
from app.storage import ObjectStore, export_store
from app.tips.models import Tip
from notifications.models import Delivery, Device, Notification
from tests.tips.conftest import jpeg, tip_body, upload

DAY = dt.timedelta(days=1)
MINUTE = dt.timedelta(minutes=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def reporter(create_user, token_for):
    user = create_user(home="110105001024")
    return user, token_for(user)


@pytest.fixture
def named_tip(client, session, reporter):
    """post(status=..., changed=...) -> a named tip (with a photo) moved to that status at
    that time, as the staff workflow would leave it."""
    _user, headers = reporter

    def post(status: str, changed: dt.datetime, consent: bool = True) -> Tip:
        photo = upload(client, jpeg(), headers)
        assert photo.status_code == 201, photo.json
        answer = client.post(
            "/api/v1/tips",
            json=tip_body(media_ids=[photo.json["id"]], police_contact_consent=consent),
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert answer.status_code == 201, answer.json
        tip_id = uuid.UUID(answer.json["id"])
        session.execute(
            update(Tip)
            .where(Tip.id == tip_id)
            .values(status=status, status_changed_at=changed)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return session.get(Tip, tip_id)

    return post


def test_reporter_contact_expires_only_for_tips_closed_past_the_period(
    client, session, named_tip, token_for
):
    now, days = _now(), 180
    due = named_tip("resolved", now - days * DAY - MINUTE)
    inside = named_tip("rejected", now - days * DAY + MINUTE)
    still_open = named_tip("in_progress", now - 400 * DAY)
    version = due.version

    assert retention.expire_reporter_contacts(session, now, days) == 1
    session.expire_all()
    assert due.reporter_contact_expired_at == now
    assert due.police_contact_consent is False
    assert due.reporter_id is not None  # the reporter still finds it among their own
    assert due.version == version + 1  # ETags change with what the reporter view shows
    for kept in (inside, still_open):
        assert kept.reporter_contact_expired_at is None
        assert kept.police_contact_consent is True
    # A second run finds nothing more.
    assert retention.expire_reporter_contacts(session, now, days) == 0

    staff = token_for("grid_staff")
    gone = client.get(f"/api/v1/tips/{due.id}/reporter?purpose=核实线索", headers=staff)
    assert gone.status_code == 404
    assert gone.content_type == "application/problem+json"
    shown = client.get(f"/api/v1/tips/{inside.id}/reporter?purpose=核实线索", headers=staff)
    assert shown.status_code == 200, shown.json


def test_photos_of_tips_closed_past_the_period_are_deleted_files_and_rows(session, named_tip):
    now, days = _now(), 365
    due = named_tip("referred_to_police", now - days * DAY - MINUTE)
    inside = named_tip("resolved", now - days * DAY + MINUTE)
    still_open = named_tip("submitted", now - 900 * DAY)
    store = storage()
    [gone] = session.scalars(select(Media).where(Media.tip_id == due.id)).all()
    gone_keys = (gone.storage_key, gone.thumbnail_key)
    assert all(store.exists(k) for k in gone_keys)

    assert retention.delete_closed_tip_photos(session, now, days, store) == 1
    assert session.scalars(select(Media).where(Media.tip_id == due.id)).all() == []
    assert not any(store.exists(k) for k in gone_keys)
    for kept in (inside, still_open):
        [media] = session.scalars(select(Media).where(Media.tip_id == kept.id)).all()
        assert store.exists(media.storage_key) and store.exists(media.thumbnail_key)
    assert session.get(Tip, due.id) is not None  # the tip itself is kept


def _device(session, user, seen: dt.datetime) -> Device:
    device = Device(
        user_id=user.id, token=f"tok-{uuid.uuid4().hex}", platform="android", last_seen_at=seen
    )
    session.add(device)
    session.flush()
    return device


def test_devices_not_seen_for_the_period_are_deleted(session, create_user):
    user, now, days = create_user(), _now(), 90
    due = _device(session, user, now - days * DAY - MINUTE)
    inside = _device(session, user, now - days * DAY + MINUTE)
    fresh = _device(session, user, now)

    assert retention.delete_inactive_devices(session, now, days) == 1
    remaining = set(session.scalars(select(Device.id).where(Device.user_id == user.id)))
    assert remaining == {inside.id, fresh.id}
    assert due.id not in remaining


def _notification(session, user, made: dt.datetime) -> Notification:
    note = Notification(
        user_id=user.id,
        kind="tip_status",
        subject_type="tip",
        subject_id=uuid.uuid4(),
        created_at=made,
    )
    session.add(note)
    session.flush()
    return note


def test_notifications_past_the_period_go_with_their_deliveries(session, create_user):
    user, now, days = create_user(), _now(), 180
    due = _notification(session, user, now - days * DAY - MINUTE)
    inside = _notification(session, user, now - days * DAY + MINUTE)
    device = _device(session, user, now)
    for note in (due, inside):
        session.add(Delivery(notification_id=note.id, device_id=device.id, status="sent"))
    session.flush()

    assert retention.delete_old_notifications(session, now, days) == 1
    left = set(session.scalars(select(Notification.id).where(Notification.user_id == user.id)))
    assert left == {inside.id}
    deliveries = set(session.scalars(select(Delivery.notification_id)))
    assert due.id not in deliveries and inside.id in deliveries


def _session(session, user, *, created, revoked=None, token_expires=None) -> AuthSession:
    auth = AuthSession(user_id=user.id, created_at=created, revoked_at=revoked)
    session.add(auth)
    session.flush()
    if token_expires is not None:
        session.add(
            RefreshToken(
                jti=uuid.uuid4(), session_id=auth.id, issued_at=created, expires_at=token_expires
            )
        )
        session.flush()
    return auth


def test_sessions_over_for_the_period_are_deleted_with_their_tokens(session, create_user):
    user, now, days = create_user(), _now(), 30
    limit = now - days * DAY
    long_ago = now - 200 * DAY
    revoked_due = _session(
        session, user, created=long_ago, revoked=limit - MINUTE, token_expires=now + DAY
    )
    expired_due = _session(session, user, created=long_ago, token_expires=limit - MINUTE)
    revoked_inside = _session(session, user, created=long_ago, revoked=limit + MINUTE)
    expired_inside = _session(session, user, created=long_ago, token_expires=limit + MINUTE)
    live = _session(session, user, created=long_ago, token_expires=now + 10 * DAY)

    assert retention.delete_ended_sessions(session, now, days) == 2
    left = set(session.scalars(select(AuthSession.id).where(AuthSession.user_id == user.id)))
    assert left == {revoked_inside.id, expired_inside.id, live.id}
    tokens = set(session.scalars(select(RefreshToken.session_id)))
    assert revoked_due.id not in tokens and expired_due.id not in tokens
    assert {expired_inside.id, live.id} <= tokens


def _batch(session, user, store: ObjectStore, acknowledged: dt.datetime | None) -> ClueBatch:
    batch = ClueBatch(
        created_by=user.id,
        creator_role="police_liaison",
        purpose="核查辖区盗窃线索",
        case_reference="京公朝刑2026-0042",
        status="ready",
        acknowledged_at=acknowledged,
        acknowledged_by=user.id if acknowledged else None,
    )
    session.add(batch)
    session.flush()
    store.put(f"{batch.id}/tips.csv", "reporter_name,reporter_phone\n张三,13900000000\n".encode())
    return batch


def test_batch_files_go_the_period_after_acknowledgement_and_the_record_stays(
    app, session, create_user
):
    liaison = create_user(roles=["police_liaison"], jurisdiction=["110105001000"])
    store = export_store()
    now, days = _now(), 90
    due = _batch(session, liaison, store, now - days * DAY - MINUTE)
    inside = _batch(session, liaison, store, now - days * DAY + MINUTE)
    unacknowledged = _batch(session, liaison, store, None)

    assert retention.delete_acknowledged_batch_files(session, now, days, store) == 1
    assert list(store.list(f"{due.id}/")) == []
    assert due.files_deleted_at == now
    assert session.get(ClueBatch, due.id) is not None
    for kept in (inside, unacknowledged):
        assert store.exists(f"{kept.id}/tips.csv")
        assert kept.files_deleted_at is None
    assert retention.delete_acknowledged_batch_files(session, now, days, store) == 0
    for kept in (inside, unacknowledged):
        store.delete_prefix(f"{kept.id}/")


def test_a_batch_whose_files_were_deleted_answers_404_for_them(session, create_user):
    liaison = create_user(roles=["police_liaison"], jurisdiction=["110105001000"])
    batch = _batch(session, liaison, export_store(), _now() - 100 * DAY)
    batch.files_deleted_at = _now()
    with pytest.raises(NotFound, match="retention"):
        exports.open_file(session, liaison, batch, "tips.csv")
    export_store().delete_prefix(f"{batch.id}/")


def _audit(session, at: dt.datetime) -> int:
    return session.execute(
        sa.insert(AuditEvent).values(action="test.retention", at=at).returning(AuditEvent.id)
    ).scalar_one()


def test_audit_rows_past_the_period_are_purged_and_younger_ones_stay(session):
    now, days = _now(), 365
    due = _audit(session, now - days * DAY - MINUTE)
    inside = _audit(session, now - days * DAY + MINUTE)
    young = _audit(session, now - DAY)

    assert retention.purge_audit_events(session, now, days) >= 1
    left = set(session.scalars(select(AuditEvent.id).where(AuditEvent.action == "test.retention")))
    assert left == {inside, young}
    assert due not in left


def test_the_database_keeps_audit_rows_six_months_whatever_the_caller_asks(connection, session):
    old = _audit(session, _now() - 400 * DAY)
    savepoint = connection.begin_nested()
    with pytest.raises(sa.exc.DBAPIError, match="at least 183 days"):
        connection.execute(sa.select(func.audit_events_purge(_now() - 100 * DAY)))
    savepoint.rollback()
    # The application's role cannot open the function's door itself.
    savepoint = connection.begin_nested()
    connection.exec_driver_sql("SET LOCAL qunfang.audit_purge = 'on'")
    with pytest.raises(sa.exc.DBAPIError, match="permission denied"):
        connection.exec_driver_sql(f"DELETE FROM audit_events WHERE id = {old}")
    savepoint.rollback()
    assert session.get(AuditEvent, old) is not None


@pytest.mark.parametrize("name", sorted(RETENTION_DAYS))
def test_retention_settings_outside_their_range_are_refused(monkeypatch, name):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u:p@127.0.0.1:1/db")
    _default, low, high = RETENTION_DAYS[name]
    for wrong in (low - 1, high + 1):
        monkeypatch.setenv(name, str(wrong))
        with pytest.raises(ConfigError, match=name):
            Config.from_env()
    monkeypatch.setenv(name, str(low))
    assert getattr(Config.from_env(), name) == low


def test_audit_is_kept_at_least_six_months_by_configuration():
    assert RETENTION_DAYS["AUDIT_RETENTION_DAYS"][1] >= 183


RETENTION_JOBS = {
    "expire_reporter_contacts": "TIP_REPORTER_CONTACT_DAYS_AFTER_CLOSE",
    "delete_closed_tip_photos": "CLOSED_TIP_PHOTO_DAYS",
    "delete_inactive_devices": "DEVICE_INACTIVE_DAYS",
    "delete_old_notifications": "NOTIFICATION_RETENTION_DAYS",
    "delete_ended_sessions": "SESSION_RETENTION_DAYS",
    "delete_acknowledged_batch_files": "BATCH_FILE_DAYS_AFTER_ACK",
    "purge_audit_events": "AUDIT_RETENTION_DAYS",
}


@pytest.mark.parametrize("name", sorted(RETENTION_JOBS))
def test_each_retention_job_is_periodic_and_runs_in_a_worker(app, session, monkeypatch, name):
    monkeypatch.setattr(jobs_module, "_worker_app", app)
    periodic = {
        p.periodic_id: p for p in jobs_module.jobs.periodic_registry.periodic_tasks.values()
    }
    job = getattr(privacy_jobs, name)
    assert periodic[name].task is job
    assert job.queue == "maintenance"
    assert isinstance(job(timestamp=int(_now().timestamp())), int)


def test_a_job_takes_its_period_from_the_settings(app, session, create_user, monkeypatch):
    monkeypatch.setattr(jobs_module, "_worker_app", app)
    monkeypatch.setitem(app.config, "DEVICE_INACTIVE_DAYS", 7)
    user, now = create_user(), _now()
    kept = _device(session, user, now - 6 * DAY).id
    _device(session, user, now - 8 * DAY)
    session.commit()
    privacy_jobs.delete_inactive_devices(timestamp=int(now.timestamp()))
    left = set(session.scalars(select(Device.id).where(Device.user_id == user.id)))
    assert left == {kept}
