"""Jobs are deferred inside the request's transaction and run by a real worker."""

from __future__ import annotations

import datetime as dt

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
