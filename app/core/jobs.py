"""Background jobs on PostgreSQL (procrastinate), deferred inside the request's transaction.

`defer(task, **kwargs)` inserts the job through the SQLAlchemy session's own connection, so the
job exists if and only if the request's transaction commits (the transactional outbox). Workers
(`flask jobs worker`, any number, on any host) run each job inside a Flask application context and
commit once when it succeeds, like a request.

procrastinate's schema is applied by an Alembic migration, never by `procrastinate schema`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

import procrastinate
import procrastinate.exceptions
import procrastinate.manager
import procrastinate.worker
import psycopg
import psycopg_pool
import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from procrastinate.jobs import Status
from sqlalchemy.engine import make_url

from app.extensions import db

logger = logging.getLogger(__name__)
jobs = procrastinate.App(connector=procrastinate.PsycopgConnector())

# The Flask application that workers run jobs in; set by `run_worker`.
_worker_app: Flask | None = None


def libpq_conninfo(sqlalchemy_url: str) -> str:
    """The libpq URL psycopg takes, from our `postgresql+psycopg://` SQLAlchemy URL."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def task(
    *, name: str | None = None, **options: Any
) -> Callable[[Callable[..., Any]], procrastinate.tasks.Task]:
    """Register a job; its body runs in an application context and commits once on success.

    Its name is `module.function` unless `name` is given: a job moved to another module keeps
    its first name, by which the jobs already queued (and periodic runs already recorded) call
    it."""

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

        return jobs.task(name=name or f"{func.__module__}.{func.__name__}", **options)(run)

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


# Reconnecting: the first retry after this long, doubling up to RECONNECT_MAX_S; a worker that
# ran HEALTHY_AFTER_S before it failed starts again from the first delay.
RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 8.0
HEALTHY_AFTER_S = 60.0
STOP_GRACE_S = 5.0
# A job whose worker died this many times is not retried again: it failed.
STALLED_MAX_ATTEMPTS = 5


class _WorkerStopped(Exception):
    """The worker stopped without being asked to (procrastinate stops on a failed side task,
    such as its LISTEN connection lost with the database)."""


_DATABASE_LOST = (
    procrastinate.exceptions.ConnectorException,
    psycopg.Error,
    psycopg_pool.PoolTimeout,
    OSError,
    _WorkerStopped,
)


def run_worker(app: Flask, *, wait: bool = True, concurrency: int = 1, **options: Any) -> None:
    """Run a worker for `app` until stopped (or, with wait=False, until the queue is empty).

    Losing the database does not end it: the worker is started again, on new connections, after
    a growing delay (RECONNECT_FIRST_S doubling to RECONNECT_MAX_S) until the database answers.
    It beats a heartbeat every JOB_STALLED_AFTER_S / 3 seconds, and puts back the running jobs
    of workers whose heartbeat stopped (`retry_stalled_jobs`).
    With wait=False a lost database ends the run with its error.
    """
    global _worker_app
    _worker_app = app
    _bound_job_statements(app)
    stalled_after = app.config["JOB_STALLED_AFTER_S"]
    options.setdefault("update_heartbeat_interval", max(1.0, stalled_after / 3))
    options.setdefault("stalled_worker_timeout", stalled_after)
    install_signal_handlers = options.pop("install_signal_handlers", True)
    engine_options = app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("connect_args", {})
    connect_kwargs = {
        k: v for k, v in engine_options.items() if k.startswith(("connect_timeout", "keepalives"))
    }
    # procrastinate's own connections LISTEN for new jobs and hold its locks between
    # statements: never through a transaction-mode pooler (config: DATABASE_DIRECT_URL).
    queue_url = app.config["DATABASE_DIRECT_URL"] or app.config["SQLALCHEMY_DATABASE_URI"]
    asyncio.run(
        _run_until_stopped(
            libpq_conninfo(queue_url),
            connect_kwargs,
            install_signal_handlers=install_signal_handlers,
            wait=wait,
            concurrency=concurrency,
            **options,
        )
    )


def _bound_job_statements(app: Flask) -> None:
    """Jobs may run longer statements than requests (JOB_STATEMENT_TIMEOUT_S), and sit longer
    inside a transaction between two of them; their connections are pinged at checkout.

    Directly connected, that is a session setting made once per connection. Behind a
    transaction-mode pooler a session setting would stay on the server connection and reach
    whichever app node's request runs there next: each job transaction sets it LOCAL instead
    (one more round trip per job)."""
    timeout_ms = app.config["JOB_STATEMENT_TIMEOUT_S"] * 1000
    settings = (
        f"statement_timeout = {timeout_ms}",
        f"idle_in_transaction_session_timeout = {timeout_ms}",
    )

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            for setting in settings:
                cursor.execute(f"SET {setting}")
        dbapi_connection.commit()

    local = "SELECT " + ", ".join(
        f"set_config('{name.strip()}', '{value.strip()}', true)"
        for name, value in (setting.split("=") for setting in settings)
    )

    def on_begin(_session: Any, _transaction: Any, connection: sa.Connection) -> None:
        # Sessions of every application in this process share the listener: this worker's only.
        if has_app_context() and current_app._get_current_object() is app:
            connection.exec_driver_sql(local)

    def ping_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # Requests do without a ping before each checkout (a round trip each: app/core/db.py)
        # and are retried by their clients; a job is not, and one run on a connection the
        # server dropped meanwhile (a restart) would fail for good. The pool replaces a
        # connection whose checkout raises DisconnectionError.
        try:
            ping(dbapi_connection)
        except Exception as exc:
            raise sa.exc.DisconnectionError(str(exc)) from exc

    with app.app_context():
        ping = db.engine.dialect.do_ping
        if app.config["DATABASE_POOLER"]:
            sa.event.listen(db.session, "after_begin", on_begin)
        else:
            sa.event.listen(db.engine, "connect", on_connect)
        sa.event.listen(db.engine, "checkout", ping_on_checkout)
        db.engine.dispose()


async def _run_until_stopped(
    conninfo: str,
    connect_kwargs: dict[str, Any],
    *,
    install_signal_handlers: bool,
    wait: bool,
    **options: Any,
) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    running: list[procrastinate.worker.Worker] = []

    def stop() -> None:
        stopping.set()
        for worker in running:
            worker.stop()

    if install_signal_handlers and threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
    delay = RECONNECT_FIRST_S
    try:
        while not stopping.is_set():
            started = loop.time()
            try:
                await _run_once(conninfo, connect_kwargs, running, stopping, wait=wait, **options)
                return
            except Exception as exc:
                if not wait:
                    raise
                if loop.time() - started > HEALTHY_AFTER_S:
                    delay = RECONNECT_FIRST_S
                lost = isinstance(exc, _DATABASE_LOST)
                logger.warning(
                    "job worker lost the database; starting again"
                    if lost
                    else "job worker failed; starting again",
                    extra={"error": f"{type(exc).__name__}: {exc}", "retry_in_s": delay},
                    exc_info=not lost,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            delay = min(delay * 2, RECONNECT_MAX_S)
    finally:
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)


async def _run_or_cut_short(worker: procrastinate.worker.Worker, stopping: asyncio.Event) -> None:
    """Run `worker` until it stops. A worker that stops by itself (procrastinate stops it when
    a side task fails: its LISTEN connection lost with the database) sometimes never finishes
    stopping while the database restarts (seen in tests/ops/test_faults.py: the loop idle,
    no job running, for minutes); past STOP_GRACE_S it is cut short, and the caller starts a
    new one on a new pool. A stop we asked for (SIGTERM) is never cut: its jobs finish."""
    stopped_itself = asyncio.Event()
    stop = worker.stop

    def stop_requested() -> None:
        if not stopping.is_set():
            stopped_itself.set()
        stop()

    worker.stop = stop_requested  # type: ignore[method-assign]
    run = asyncio.create_task(worker.run())
    asked = asyncio.create_task(stopped_itself.wait())
    try:
        await asyncio.wait({run, asked}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            await asyncio.wait({run}, timeout=STOP_GRACE_S)
        for _ in range(2):  # procrastinate's run() shields its loop: the second cancel reaches it
            if not run.done():
                run.cancel()
                await asyncio.wait({run}, timeout=1)
        if not run.done() or run.cancelled():
            # Left behind if still stuck (its pool is closed by the caller); never awaited.
            raise _WorkerStopped(f"the worker did not finish stopping in {STOP_GRACE_S} s")
        await run
    finally:
        asked.cancel()
        if not run.done():
            run.cancel()


async def _run_once(
    conninfo: str,
    connect_kwargs: dict[str, Any],
    running: list[procrastinate.worker.Worker],
    stopping: asyncio.Event,
    *,
    wait: bool,
    **options: Any,
) -> None:
    """One worker on a pool of its own, until it stops; raises when it stopped unasked."""
    pool = psycopg_pool.AsyncConnectionPool(
        conninfo,
        open=False,
        min_size=1,
        max_size=options.get("concurrency", 1) + 2,
        kwargs=connect_kwargs,
        check=psycopg_pool.AsyncConnectionPool.check_connection,
        timeout=10,
    )
    try:
        await pool.open(wait=True, timeout=10)
        async with jobs.open_async(pool):
            worker = jobs._worker(wait=wait, install_signal_handlers=False, **options)
            running.append(worker)
            checking = asyncio.create_task(
                _retry_stalled_jobs_every(options["stalled_worker_timeout"])
            )
            try:
                await _run_or_cut_short(worker, stopping)
            finally:
                running.remove(worker)
                checking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await checking
        if wait and not stopping.is_set():
            raise _WorkerStopped("the worker stopped by itself")
    finally:
        await pool.close(timeout=2)
        # procrastinate 3.10 keeps a reference to a pool it was given after closing
        # (close_async returns early for external pools); later synchronous defers in this
        # process would then go down the async path with a sync connection and fail.
        jobs.connector._async_pool = None


async def retry_stalled_jobs(stalled_after_s: float) -> None:
    """Put back the running jobs of workers whose heartbeat stopped (killed, frozen, cut off):
    they run again on a live worker; a job that outlived STALLED_MAX_ATTEMPTS workers failed."""
    for job in await jobs.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_s):
        try:
            if job.attempts + 1 >= STALLED_MAX_ATTEMPTS:
                await jobs.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
                logger.error("stalled job failed for good", extra={"job_id": job.id})
            else:
                await jobs.job_manager.retry_job(job)
                logger.warning("stalled job retried", extra={"job_id": job.id})
        except procrastinate.exceptions.ConnectorException as exc:
            # Finished or retried meanwhile (by its worker, or another worker's check).
            logger.info(
                "stalled job changed meanwhile", extra={"job_id": job.id, "error": str(exc)}
            )


async def _retry_stalled_jobs_every(stalled_after_s: float) -> None:
    """Every worker looks for stalled jobs twice per JOB_STALLED_AFTER_S (a side loop rather
    than a periodic job, which would leave a job row behind every few seconds)."""
    while True:
        await asyncio.sleep(max(1.0, stalled_after_s / 2))
        try:
            await retry_stalled_jobs(stalled_after_s)
        except _DATABASE_LOST as exc:
            logger.warning("stalled jobs not checked", extra={"error": str(exc)})
