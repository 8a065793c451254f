"""The periodic orphan sweep of both stores (app/storage/sweep.py), asking each namespace's
owner which objects rows still point to (app/storage/owners.py)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from flask import current_app
from sqlalchemy.orm import Session

from app.core.jobs import jobs, task
from app.extensions import db
from app.storage import export_store, media_store, owners
from app.storage.sweep import SweepResult, sweep, sweep_scratch

logger = logging.getLogger(__name__)


def sweep_all(session: Session, now: dt.datetime, grace_hours: int) -> dict[str, SweepResult]:
    """Both stores, and this host's scratch folder (EXPORT_ROOT's builds in progress)."""
    before = now - dt.timedelta(hours=grace_hours)
    return {
        "media": sweep(
            media_store(), lambda keys: owners.referenced(session, "media", keys), before
        ),
        "exports": sweep(
            export_store(), lambda keys: owners.referenced(session, "exports", keys), before
        ),
        "scratch": SweepResult(sweep_scratch(Path(current_app.config["EXPORT_ROOT"]), before), 0),
    }


@jobs.periodic(cron="41 * * * *", periodic_id="sweep_orphan_objects")
@task(queue="maintenance")
def sweep_orphan_objects(timestamp: int) -> int:
    """Hourly: delete stored objects no row points to, older than STORAGE_ORPHAN_GRACE_HOURS
    (a crash between an upload and its commit), and abort uploads never finished."""
    results = sweep_all(
        db.session,
        dt.datetime.fromtimestamp(timestamp, dt.UTC),
        current_app.config["STORAGE_ORPHAN_GRACE_HOURS"],
    )
    for name, result in results.items():
        if result.deleted or result.aborted_uploads:
            logger.info(
                "orphan objects swept",
                extra={"store": name, "deleted": result.deleted, "aborted": result.aborted_uploads},
            )
    return sum(r.deleted for r in results.values())
