"""The periodic erasure of stale on-duty positions."""

from __future__ import annotations

import datetime as dt

from flask import current_app

from app.core.jobs import jobs, task
from app.duty import service
from app.extensions import db


# Its name from before duty left the tasks package: jobs queued under it still run.
@jobs.periodic(cron="*/10 * * * *", periodic_id="expire_duty_positions")
@task(queue="maintenance", name="app.tasks.service.expire_duty_positions")
def expire_duty_positions(timestamp: int) -> int:
    """Every 10 minutes: erase positions older than DUTY_POSITION_MINUTES."""
    return service.expire_positions(
        db.session,
        dt.datetime.fromtimestamp(timestamp, dt.UTC),
        current_app.config["DUTY_POSITION_MINUTES"],
    )
