"""Jobs of the clue batches: building a batch's files (retried, one builder at a time) and
failing the batches whose build job ended without finishing them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import procrastinate
import psycopg
from flask import current_app
from sqlalchemy import String, cast, column, exists, func, select, table, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from app.core.i18n import DEFAULT_LOCALE
from app.core.jobs import STALLED_MAX_ATTEMPTS, jobs, task
from app.exports import service, signing
from app.exports.models import ClueBatch
from app.extensions import db

# A build is tried at most BUILD_ATTEMPTS times in all. Runs that a dead worker cut short count
# (the workers retry stalled jobs, one more attempt each), so a batch that kills its worker every
# time (out of memory, say) ends `failed` instead of looping; it is below the number of dead
# workers after which the workers fail a stalled job outright (STALLED_MAX_ATTEMPTS), so that
# the job itself gets to record why. Database errors that go away by themselves (a restart, a
# dropped connection, a deadlock, a lock or statement timeout: all OperationalError or
# InterfaceError) are retried after 2, 4 and 8 seconds; any other error fails the batch at
# once. `fail_orphaned_batches` catches what still slips through (a job failed by other means, a
# failure that could not be recorded while the database was away).
BUILD_ATTEMPTS = STALLED_MAX_ATTEMPTS - 1
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # no pooled connection in time
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
BUILD_RETRY = procrastinate.RetryStrategy(
    max_attempts=BUILD_ATTEMPTS - 1, exponential_wait=2, retry_exceptions=TRANSIENT_ERRORS
)
# One builder per batch: a transaction-scoped advisory lock (namespace "qfb1", key from the id),
# released by PostgreSQL when the builder's connection ends, however its process ended.
_BUILD_LOCK_NAMESPACE = 0x71666231
BUILD_LOCK_WAIT = "60s"
_attempt: ContextVar[int] = ContextVar("clue_batch_attempt", default=0)


def note_attempt(call_next: Callable[[], Any], context: Any, worker: Any) -> Any:
    """procrastinate task middleware: tell the job which attempt this is (0 for the first;
    a retry after an error or after a dead worker adds one)."""
    token = _attempt.set(context.job.attempts)
    try:
        return call_next()
    finally:
        _attempt.reset(token)


def _lock_build(session: Session, batch_id: uuid.UUID) -> None:
    """Wait (at most BUILD_LOCK_WAIT, then a retried OperationalError) until no other builder of
    this batch is alive: a stalled job retried while its first worker still runs must not write
    the same folder."""
    key = int.from_bytes(batch_id.bytes[:4], "big", signed=True)
    session.execute(text(f"SET LOCAL lock_timeout = '{BUILD_LOCK_WAIT}'"))
    session.execute(select(func.pg_advisory_xact_lock(_BUILD_LOCK_NAMESPACE, key)))
    session.execute(text("SET LOCAL lock_timeout TO DEFAULT"))


def _scratch_root() -> Path:
    """The local folder where a worker builds files before storing them (EXPORT_ROOT)."""
    return Path(current_app.config["EXPORT_ROOT"])


def _failure(exc: BaseException, attempt: int, retrying: bool) -> str:
    kind = type(exc).__name__
    if retrying:
        return f"{kind} on attempt {attempt} of {BUILD_ATTEMPTS}; the build will be retried."
    if isinstance(exc, TRANSIENT_ERRORS):
        return f"{kind}: the database failed the build {attempt} times; gave up."
    return f"{kind}: the files could not be made."


@task(
    queue="exports",
    retry=BUILD_RETRY,
    task_middleware=[note_attempt],
    name="app.exports.service.generate_batch",
)
def generate_batch(batch_id: str, locale: str = DEFAULT_LOCALE) -> int:
    """Make a batch's files. Safe to run again at any point: a run finding the batch unfinished
    (`pending`, or `running` after its worker died) removes what an earlier run left and builds
    it again, to the same bytes; a ready or failed batch is left alone.

    A transient database error puts the batch back to `pending` with the reason and is raised
    again for the queue to retry; when no attempt is left, or for any other error, the batch is
    recorded `failed` with the reason. No partial files outlive a run that ends."""
    batch_uuid = uuid.UUID(batch_id)
    scratch_root = _scratch_root()
    session = db.session
    _lock_build(session, batch_uuid)
    batch = session.get(ClueBatch, batch_uuid)
    if batch is None or batch.status in ("ready", "failed"):
        return 0
    attempt = _attempt.get() + 1
    service.discard_files(batch_uuid, scratch_root)
    if attempt > BUILD_ATTEMPTS:
        service._progress(
            batch_uuid,
            status="failed",
            finished_at=service._now(),
            error=f"The build was interrupted {attempt - 1} times (its worker stopped); gave up.",
        )
        return 0
    service._progress(
        batch_uuid, status="running", percent=0, started_at=service._now(), error=None
    )
    try:
        key = signing.signing_key_from_seed(current_app.config["CLUE_SIGNING_SECRET"])
        service.build_files(session, batch, locale, scratch_root=scratch_root, signing_key=key)
    except Exception as exc:
        retrying = isinstance(exc, TRANSIENT_ERRORS) and attempt < BUILD_ATTEMPTS
        service.discard_files(batch_uuid, scratch_root)
        try:
            service._progress(
                batch_uuid,
                status="pending" if retrying else "failed",
                percent=0,
                finished_at=None if retrying else service._now(),
                error=_failure(exc, attempt, retrying),
            )
        finally:
            # Only now: the rollback ends the build lock, and another run may start.
            session.rollback()
        raise
    batch.status, batch.percent, batch.finished_at = "ready", 100, service._now()
    session.flush()
    return batch.row_count


_procrastinate_jobs = table(
    "procrastinate_jobs", column("task_name"), column("args", JSONB), column("status")
)


@jobs.periodic(cron="*/10 * * * *", periodic_id="fail_orphaned_batches")
@task(queue="maintenance", name="app.exports.service.fail_orphaned_batches")
def fail_orphaned_batches(timestamp: int) -> int:
    """Every 10 minutes: a batch still `pending` or `running` whose build job is neither queued
    nor running (failed for good by the queue, deleted, or whose last failure could not be
    recorded) will never be built: it is recorded `failed` and its files are removed."""
    job_alive = exists().where(
        _procrastinate_jobs.c.task_name == generate_batch.name,
        _procrastinate_jobs.c.args["batch_id"].astext == cast(ClueBatch.id, String),
        cast(_procrastinate_jobs.c.status, String).in_(("todo", "doing")),
    )
    orphans = db.session.scalars(
        update(ClueBatch)
        .where(ClueBatch.status.in_(("pending", "running")), ~job_alive)
        .values(
            status="failed",
            finished_at=func.now(),
            error="The build job ended without finishing the batch; make it again.",
        )
        .returning(ClueBatch.id)
    ).all()
    for batch_id in orphans:
        service.discard_files(batch_id, _scratch_root())
    return len(orphans)
