"""Background jobs on PostgreSQL (procrastinate), deferred inside the request's transaction.

`defer(task, **kwargs)` inserts the job through the SQLAlchemy session's own connection, so the
job exists if and only if the request's transaction commits (the transactional outbox). Workers
(`flask jobs worker`, any number, on any host) run each job inside a Flask application context and
commit once when it succeeds, like a request.

procrastinate's schema is applied by an Alembic migration, never by `procrastinate schema`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import procrastinate
import procrastinate.manager
import psycopg_pool
from flask import Flask
from sqlalchemy.engine import make_url

from app.extensions import db

jobs = procrastinate.App(connector=procrastinate.PsycopgConnector())

# The Flask application that workers run jobs in; set by `run_worker`.
_worker_app: Flask | None = None


def libpq_conninfo(sqlalchemy_url: str) -> str:
    """The libpq URL psycopg takes, from our `postgresql+psycopg://` SQLAlchemy URL."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def task(**options: Any) -> Callable[[Callable[..., Any]], procrastinate.tasks.Task]:
    """Register a job; its body runs in an application context and commits once on success."""

    def decorator(func: Callable[..., Any]) -> procrastinate.tasks.Task:
        @functools.wraps(func)
        def run(**kwargs: Any) -> Any:
            if _worker_app is None:
                raise RuntimeError("jobs run inside `flask jobs worker` (run_worker)")
            with _worker_app.app_context():
                try:
                    result = func(**kwargs)
                    db.session.commit()
                    return result
                except BaseException:
                    db.session.rollback()
                    raise

        return jobs.task(name=f"{func.__module__}.{func.__name__}", **options)(run)

    return decorator


# Defers always run on the session's own (synchronous) connection. Inside a worker the App's
# connector is the asynchronous one, which cannot use a synchronous connection: a connector of
# its own that is never opened (it only runs queries on connections it is handed) serves both.
_on_given_connection = procrastinate.manager.JobManager(procrastinate.SyncPsycopgConnector())


def defer(
    job: procrastinate.tasks.Task, *, schedule_in: dict[str, int] | None = None, **kwargs: Any
) -> int:
    """Defer `job` in the current transaction (to run `schedule_in` from now, e.g.
    `{"seconds": 120}`, when given), from a request or from another job; returns the job id."""
    connection = db.session.connection().connection.driver_connection
    deferrer = job.configure(connection=connection, schedule_in=schedule_in)
    made = _on_given_connection.defer_job(deferrer.make_new_job(**kwargs), connection=connection)
    return made.id


def run_worker(app: Flask, *, wait: bool = True, concurrency: int = 1, **options: Any) -> None:
    """Run a worker for `app` until stopped (or, with wait=False, until the queue is empty)."""
    global _worker_app
    _worker_app = app
    pool = psycopg_pool.AsyncConnectionPool(
        libpq_conninfo(app.config["SQLALCHEMY_DATABASE_URI"]),
        open=False,
        min_size=1,
        max_size=concurrency + 2,
        check=psycopg_pool.AsyncConnectionPool.check_connection,
    )

    async def main() -> None:
        await pool.open(wait=True)
        try:
            async with jobs.open_async(pool):
                await jobs.run_worker_async(wait=wait, concurrency=concurrency, **options)
        finally:
            await pool.close()
            # procrastinate 3.10 keeps a reference to a pool it was given after closing
            # (close_async returns early for external pools); later synchronous defers in this
            # process would then go down the async path with a sync connection and fail.
            jobs.connector._async_pool = None

    asyncio.run(main())
