"""Jobs are deferred inside the request's transaction and run by a real worker."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time

import pytest
import sqlalchemy as sa

from app.core import jobs as jobs_module
from app.core.idempotency import IdempotencyRecord, prune_idempotency_records
from tests.conftest import make_app


def count_jobs(conn) -> int:
    return conn.execute(sa.text("SELECT count(*) FROM procrastinate_jobs")).scalar_one()


def test_a_deferred_job_exists_only_inside_its_transaction(session, connection, app):
    job_id = jobs_module.defer(prune_idempotency_records, timestamp=0)
    assert job_id > 0
    assert count_jobs(connection) == 1
    # Until the transaction commits, no worker (another connection) can see it.
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=sa.pool.NullPool)
    with engine.connect() as other:
        assert count_jobs(other) == 0
    engine.dispose()


def test_a_rolled_back_transaction_takes_its_job_with_it(session, connection):
    nested = session.begin_nested()
    jobs_module.defer(prune_idempotency_records, timestamp=0)
    nested.rollback()
    assert count_jobs(connection) == 0


def test_the_prune_job_is_periodic(app):
    periodic = {
        p.periodic_id: p for p in jobs_module.jobs.periodic_registry.periodic_tasks.values()
    }
    assert periodic["prune_idempotency_records"].task is prune_idempotency_records


def test_a_worker_runs_committed_jobs(database_url):
    """End to end on committed data: a job committed with its work is run by a worker."""
    app = make_app(database_url)
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    now = dt.datetime.now(dt.UTC)
    try:
        with app.app_context():
            from app.extensions import db

            db.session.add(
                IdempotencyRecord(
                    scope="anonymous",
                    key="worker-test-key",
                    fingerprint=b"\0" * 32,
                    status_code=201,
                    headers={},
                    body=b"{}",
                    expires_at=now - dt.timedelta(days=1),
                )
            )
            job_id = jobs_module.defer(prune_idempotency_records, timestamp=int(now.timestamp()))
            db.session.commit()
        jobs_module.run_worker(app, wait=False, install_signal_handlers=False)
        with engine.connect() as conn:
            status = conn.execute(
                sa.text("SELECT status FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
            ).scalar_one()
            left = conn.execute(
                sa.text("SELECT count(*) FROM idempotency_records WHERE key = 'worker-test-key'")
            ).scalar_one()
        assert status == "succeeded"
        assert left == 0
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM procrastinate_jobs"))
            conn.execute(sa.text("DELETE FROM idempotency_records WHERE key = 'worker-test-key'"))
        engine.dispose()


class _WorkerThatStopsItself:
    """procrastinate's Worker as the fault test saw it: a side task fails, the worker calls its
    own `stop()`, then never finishes stopping (or, `finishes_after`, finishes in time)."""

    def __init__(self, finishes_after: float | None = None) -> None:
        self.finishes_after = finishes_after
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True

    async def run(self) -> None:
        await asyncio.sleep(0.01)
        self.stop()
        if self.finishes_after is None:
            # Deaf to both cancels the watchdog sends (stuck, as seen after a database restart);
            # the third (asyncio.run closing its loop) ends it, so the test can finish.
            for _ in range(2):
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.Event().wait()
            await asyncio.Event().wait()
        await asyncio.sleep(self.finishes_after)


def test_a_worker_that_never_finishes_stopping_itself_is_cut_short(monkeypatch):
    monkeypatch.setattr(jobs_module, "STOP_GRACE_S", 0.2)
    worker = _WorkerThatStopsItself()
    started = time.monotonic()
    with pytest.raises(jobs_module._WorkerStopped):
        asyncio.run(jobs_module._run_or_cut_short(worker, asyncio.Event()))
    assert worker.stopped
    assert time.monotonic() - started < 5


def test_a_worker_that_stops_itself_in_time_or_is_stopped_by_us_is_not_cut(monkeypatch):
    monkeypatch.setattr(jobs_module, "STOP_GRACE_S", 0.5)
    # Stopped by itself, finishing within the grace: returns normally.
    asyncio.run(jobs_module._run_or_cut_short(_WorkerThatStopsItself(0.05), asyncio.Event()))

    async def asked_by_us() -> None:
        stopping = asyncio.Event()
        stopping.set()  # SIGTERM: its jobs may take longer than the grace
        await jobs_module._run_or_cut_short(_WorkerThatStopsItself(0.8), stopping)

    started = time.monotonic()
    asyncio.run(asked_by_us())
    assert time.monotonic() - started >= 0.8
