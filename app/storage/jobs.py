"""The periodic orphan sweep of both stores, with each namespace's rule for which objects rows
still point to (app/storage/sweep.py)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.jobs import jobs, task
from app.exports.models import ClueBatch
from app.extensions import db
from app.media.models import Media
from app.media.storage import media_id_of
from app.privacy.archive import archive_id_of
from app.privacy.models import DataArchive
from app.storage import export_store, media_store
from app.storage.sweep import SweepResult, sweep, sweep_scratch

logger = logging.getLogger(__name__)


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def referenced_media(session: Session, keys: Sequence[str]) -> set[str]:
    """The photo keys whose row still exists (keys of no photo are not ours: kept)."""
    ids = {key: media_id_of(key) for key in keys}
    alive = set(
        session.scalars(select(Media.id).where(Media.id.in_({i for i in ids.values() if i})))
    )
    return {key for key, media_id in ids.items() if media_id is None or media_id in alive}


def referenced_exports(session: Session, keys: Sequence[str]) -> set[str]:
    """Batch files of batches not failed whose files were not deleted, archives that are
    ready; keys of neither are not ours: kept."""
    batches, archives = {}, {}
    for key in keys:
        if key.startswith("personal/"):
            archives[key] = archive_id_of(key)
        else:
            batches[key] = _uuid(key.split("/", 1)[0]) if "/" in key else None
    live_batches = set(
        session.scalars(
            select(ClueBatch.id).where(
                ClueBatch.id.in_({i for i in batches.values() if i}),
                ClueBatch.status != "failed",
                ClueBatch.files_deleted_at.is_(None),
            )
        )
    )
    ready_archives = set(
        session.scalars(
            select(DataArchive.id).where(
                DataArchive.id.in_({i for i in archives.values() if i}),
                DataArchive.status == "ready",
            )
        )
    )
    return {k for k, i in batches.items() if i is None or i in live_batches} | {
        k for k, i in archives.items() if i is None or i in ready_archives
    }


def sweep_all(session: Session, now: dt.datetime, grace_hours: int) -> dict[str, SweepResult]:
    """Both stores, and this host's scratch folder (EXPORT_ROOT's builds in progress)."""
    before = now - dt.timedelta(hours=grace_hours)
    return {
        "media": sweep(media_store(), lambda keys: referenced_media(session, keys), before),
        "exports": sweep(export_store(), lambda keys: referenced_exports(session, keys), before),
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
