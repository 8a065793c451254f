"""Jobs of the privacy package: erasing accounts whose deletion grace period is over, making
data archives and deleting the expired ones, and the retention jobs that enforce each period of
the data inventory (app/privacy/inventory.py)."""

from __future__ import annotations

import datetime as dt
import uuid

from flask import current_app

from app.core.jobs import jobs, task
from app.extensions import db
from app.privacy import archive, deletion, retention
from app.storage import export_store, media_store


@jobs.periodic(cron="23 * * * *", periodic_id="erase_deleted_accounts")
@task(queue="maintenance")
def erase_deleted_accounts(timestamp: int) -> int:
    """Hourly: erase the accounts whose deletion grace period is over (up to 100 a run; the
    next run takes the rest)."""
    return deletion.erase_due(
        db.session,
        dt.datetime.fromtimestamp(timestamp, dt.UTC),
        archives=export_store(),
        media=media_store(),
    )


@task(queue="exports", retry=3)
def build_data_archive(archive_id: str) -> str:
    """Make a person's data archive (ZIP with their tips' photos)."""
    return archive.build(
        db.session,
        uuid.UUID(archive_id),
        current_app.config["EXPORT_ROOT"],
        media_store(),
        export_store(),
    )


@jobs.periodic(cron="47 4 * * *", periodic_id="prune_data_archives")
@task(queue="maintenance")
def prune_data_archives(timestamp: int) -> int:
    """Daily: delete data archives past their days, files included."""
    return archive.prune(db.session, dt.datetime.fromtimestamp(timestamp, dt.UTC), export_store())


# -- retention (docs/privacy.md, "Data inventory and retention") ----------------------------------


def _at(timestamp: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


@jobs.periodic(cron="5 2 * * *", periodic_id="expire_reporter_contacts")
@task(queue="maintenance")
def expire_reporter_contacts(timestamp: int) -> int:
    """Daily: named tips closed TIP_REPORTER_CONTACT_DAYS_AFTER_CLOSE ago stop disclosing
    their reporter."""
    return retention.expire_reporter_contacts(
        db.session, _at(timestamp), current_app.config["TIP_REPORTER_CONTACT_DAYS_AFTER_CLOSE"]
    )


@jobs.periodic(cron="35 * * * *", periodic_id="delete_closed_tip_photos")
@task(queue="maintenance")
def delete_closed_tip_photos(timestamp: int) -> int:
    """Hourly: photos of tips closed CLOSED_TIP_PHOTO_DAYS ago (up to 1,000 a run)."""
    return retention.delete_closed_tip_photos(
        db.session, _at(timestamp), current_app.config["CLOSED_TIP_PHOTO_DAYS"], media_store()
    )


@jobs.periodic(cron="15 2 * * *", periodic_id="delete_inactive_devices")
@task(queue="maintenance")
def delete_inactive_devices(timestamp: int) -> int:
    """Daily: push tokens of phones not seen for DEVICE_INACTIVE_DAYS."""
    return retention.delete_inactive_devices(
        db.session, _at(timestamp), current_app.config["DEVICE_INACTIVE_DAYS"]
    )


@jobs.periodic(cron="25 2 * * *", periodic_id="delete_old_notifications")
@task(queue="maintenance")
def delete_old_notifications(timestamp: int) -> int:
    """Daily: notifications (and their deliveries) older than NOTIFICATION_RETENTION_DAYS."""
    return retention.delete_old_notifications(
        db.session, _at(timestamp), current_app.config["NOTIFICATION_RETENTION_DAYS"]
    )


@jobs.periodic(cron="45 2 * * *", periodic_id="delete_ended_sessions")
@task(queue="maintenance")
def delete_ended_sessions(timestamp: int) -> int:
    """Daily: login sessions over for SESSION_RETENTION_DAYS, with their refresh tokens."""
    return retention.delete_ended_sessions(
        db.session, _at(timestamp), current_app.config["SESSION_RETENTION_DAYS"]
    )


@jobs.periodic(cron="55 2 * * *", periodic_id="delete_acknowledged_batch_files")
@task(queue="maintenance")
def delete_acknowledged_batch_files(timestamp: int) -> int:
    """Daily: clue batch files BATCH_FILE_DAYS_AFTER_ACK after the police acknowledged them."""
    return retention.delete_acknowledged_batch_files(
        db.session,
        _at(timestamp),
        current_app.config["BATCH_FILE_DAYS_AFTER_ACK"],
        export_store(),
    )


@jobs.periodic(cron="5 3 * * *", periodic_id="purge_audit_events")
@task(queue="maintenance")
def purge_audit_events(timestamp: int) -> int:
    """Daily: audit rows older than AUDIT_RETENTION_DAYS (never younger than six months)."""
    return retention.purge_audit_events(
        db.session, _at(timestamp), current_app.config["AUDIT_RETENTION_DAYS"]
    )
