"""Jobs of the privacy package: erasing accounts whose deletion grace period is over, making
data archives, and deleting the expired ones."""

from __future__ import annotations

import datetime as dt
import uuid

from flask import current_app

from app.core.jobs import jobs, task
from app.extensions import db
from app.media.service import storage
from app.privacy import archive, deletion


@jobs.periodic(cron="23 * * * *", periodic_id="erase_deleted_accounts")
@task(queue="maintenance")
def erase_deleted_accounts(timestamp: int) -> int:
    """Hourly: erase the accounts whose deletion grace period is over (up to 100 a run; the
    next run takes the rest)."""
    return deletion.erase_due(
        db.session,
        dt.datetime.fromtimestamp(timestamp, dt.UTC),
        export_root=current_app.config["EXPORT_ROOT"],
    )


@task(queue="exports", retry=3)
def build_data_archive(archive_id: str) -> str:
    """Make a person's data archive (ZIP with their tips' photos)."""
    return archive.build(
        db.session, uuid.UUID(archive_id), current_app.config["EXPORT_ROOT"], storage()
    )


@jobs.periodic(cron="47 4 * * *", periodic_id="prune_data_archives")
@task(queue="maintenance")
def prune_data_archives(timestamp: int) -> int:
    """Daily: delete data archives past their days, files included."""
    return archive.prune(
        db.session,
        dt.datetime.fromtimestamp(timestamp, dt.UTC),
        current_app.config["EXPORT_ROOT"],
    )
