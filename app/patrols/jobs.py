"""The periodic jobs of the patrols package: ending forgotten patrols, the check-in partitions
and their retention, and judging checkpoint windows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app

from app.core.jobs import jobs, task
from app.extensions import db
from app.patrols.checkpoints import judge_windows
from app.patrols.service import PatrolSettings, end_idle, prune_raw


@jobs.periodic(cron="*/30 * * * *", periodic_id="end_idle_patrols")
@task(queue="maintenance", name="app.patrols.service.end_idle_patrols")
def end_idle_patrols(timestamp: int) -> int:
    """Every 30 minutes: end forgotten patrols (PATROL_IDLE_HOURS without a fix)."""
    return end_idle(
        db.session,
        dt.datetime.fromtimestamp(timestamp, dt.UTC),
        current_app.config["PATROL_IDLE_HOURS"],
        PatrolSettings.from_config(current_app.config),
    )


@jobs.periodic(cron="41 3 * * *", periodic_id="maintain_checkin_partitions")
@task(queue="maintenance", name="app.patrols.service.maintain_checkin_partitions")
def maintain_checkin_partitions(timestamp: int) -> dict[str, Any]:
    """Daily: make the coming months' check-in partitions, drop those past retention."""
    return prune_raw(
        db.session,
        dt.datetime.fromtimestamp(timestamp, dt.UTC),
        current_app.config["CHECKIN_RETENTION_DAYS"],
    )


@jobs.periodic(cron="*/10 * * * *", periodic_id="judge_checkpoint_windows")
@task(queue="maintenance", name="app.patrols.checkpoints.judge_checkpoint_windows")
def judge_checkpoint_windows(timestamp: int) -> int:
    """Every 10 minutes: mark passed scheduled windows without their visits as missed."""
    return judge_windows(
        db.session,
        dt.datetime.fromtimestamp(timestamp, dt.UTC),
        dt.timedelta(minutes=current_app.config["CHECKPOINT_GRACE_MINUTES"]),
    )
