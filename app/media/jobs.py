"""The periodic job of the media package: expiring uploads never attached."""

from __future__ import annotations

import datetime as dt

from app.core.jobs import jobs, task
from app.extensions import db
from app.media.service import delete_expired


@jobs.periodic(cron="*/15 * * * *", periodic_id="expire_unattached_media")
@task(queue="maintenance", name="app.media.service.expire_unattached_media")
def expire_unattached_media(timestamp: int) -> int:
    """Every 15 minutes: remove uploads that were never attached (to a tip or a task) in time."""
    return delete_expired(db.session, dt.datetime.fromtimestamp(timestamp, dt.UTC))
