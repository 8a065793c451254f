"""Retention: each function removes the personal information one setting says is due, and
nothing younger. The jobs in app/privacy/jobs.py call them with the settings; the inventory
(app/privacy/inventory.py, docs/privacy.md) says which column each one covers.

Every cutoff is strict (`<`): a row exactly at the limit stays until the next run.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from app.auth.models import AuthSession, RefreshToken
from app.exports.models import ClueBatch
from app.media.models import Media
from app.storage import ObjectStore
from app.tips.models import OPEN_STATUSES, Tip
from notifications.models import Device, Notification

# Photos deleted per run (each costs two file deletions); the hourly job takes the rest.
PHOTOS_PER_RUN = 1000


def _cutoff(now: dt.datetime, days: int) -> dt.datetime:
    return now - dt.timedelta(days=days)


def _closed_before(cutoff: dt.datetime):
    """Tips closed (any status outside the open ones) since before `cutoff`."""
    return and_(Tip.status.not_in(OPEN_STATUSES), Tip.status_changed_at < cutoff)


def expire_reporter_contacts(session: Session, now: dt.datetime, days: int) -> int:
    """Named tips closed more than `days` ago stop disclosing their reporter: to staff
    (GET /tips/{id}/reporter answers 404) and to later clue batches (the police-contact consent
    is withdrawn, so a batch leaves name and phone empty). The reporter link stays, for the
    reporter's own list; a tip reopened later stays undisclosed."""
    return session.execute(
        update(Tip)
        .where(
            Tip.reporter_id.is_not(None),
            Tip.reporter_contact_expired_at.is_(None),
            _closed_before(_cutoff(now, days)),
        )
        .values(
            reporter_contact_expired_at=now, police_contact_consent=False, version=Tip.version + 1
        )
        .execution_options(synchronize_session=False)
    ).rowcount


def delete_closed_tip_photos(
    session: Session, now: dt.datetime, days: int, store: ObjectStore
) -> int:
    """Photos (and thumbnails) of tips closed more than `days` ago: objects, then rows. Clue
    batches made before keep their own copies until their files' retention."""
    due = session.scalars(
        select(Media)
        .join(Tip, Tip.id == Media.tip_id)
        .where(_closed_before(_cutoff(now, days)))
        .order_by(Media.created_at)
        .limit(PHOTOS_PER_RUN)
        .with_for_update(of=Media, skip_locked=True)
    ).all()
    for media in due:
        store.delete(media.storage_key)
        store.delete(media.thumbnail_key)
        session.delete(media)
    session.flush()
    return len(due)


def delete_inactive_devices(session: Session, now: dt.datetime, days: int) -> int:
    """Push tokens of phones not seen (registered or re-registered) for `days`: the app
    registers its token at every start, so a phone still in use is never inactive that long."""
    return session.execute(delete(Device).where(Device.last_seen_at < _cutoff(now, days))).rowcount


def delete_old_notifications(session: Session, now: dt.datetime, days: int) -> int:
    """Notifications older than `days`, with their deliveries (ON DELETE CASCADE)."""
    return session.execute(
        delete(Notification).where(Notification.created_at < _cutoff(now, days))
    ).rowcount


def delete_ended_sessions(session: Session, now: dt.datetime, days: int) -> int:
    """Login sessions over for more than `days`: revoked then, or whose last refresh token
    expired then (its refresh tokens go with it, ON DELETE CASCADE). A live session stays."""
    last_expiry = (
        select(func.max(RefreshToken.expires_at))
        .where(RefreshToken.session_id == AuthSession.id)
        .correlate(AuthSession)
        .scalar_subquery()
    )
    ended = func.coalesce(AuthSession.revoked_at, last_expiry, AuthSession.created_at)
    return session.execute(delete(AuthSession).where(ended < _cutoff(now, days))).rowcount


def delete_acknowledged_batch_files(
    session: Session, now: dt.datetime, days: int, store: ObjectStore
) -> int:
    """The platform's copy of a clue batch's files (they may name consenting reporters), `days`
    after the police acknowledged receiving them. The row, its items, digest and signature stay:
    the record of what was handed over, and what a copy the police hold is checked against."""
    due = session.scalars(
        select(ClueBatch)
        .where(
            ClueBatch.acknowledged_at < _cutoff(now, days),
            ClueBatch.files_deleted_at.is_(None),
            or_(ClueBatch.status == "ready", ClueBatch.status == "failed"),
        )
        .with_for_update(skip_locked=True)
    ).all()
    for batch in due:
        store.delete_prefix(f"{batch.id}/")
        batch.files_deleted_at = now
    session.flush()
    return len(due)


def purge_audit_events(session: Session, now: dt.datetime, days: int) -> int:
    """Audit rows older than `days`, through the one function the database lets delete them
    (migration 0016), which refuses anything younger than six months whatever `days` says."""
    return session.execute(select(func.audit_events_purge(_cutoff(now, days)))).scalar_one()
