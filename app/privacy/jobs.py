"""Periodic jobs of the privacy package: erasing accounts whose deletion grace period is over."""

from __future__ import annotations

import datetime as dt

from app.core.jobs import jobs, task
from app.extensions import db
from app.privacy import deletion


@jobs.periodic(cron="23 * * * *", periodic_id="erase_deleted_accounts")
@task(queue="maintenance")
def erase_deleted_accounts(timestamp: int) -> int:
    """Hourly: erase the accounts whose deletion grace period is over (up to 100 a run; the
    next run takes the rest)."""
    return deletion.erase_due(db.session, dt.datetime.fromtimestamp(timestamp, dt.UTC))
