"""Heavy reads on a streaming replica, within a bound on staleness (issue #18; the operator's
view: docs/replica-and-pooling.md).

With DATABASE_REPLICA_URL set, a view marked `@heavy_read` (grid aggregates, coverage,
compliance, the public heatmap, the stations export) runs its SELECTs on the replica, and
clue-batch building reads its rows there (`reading_session`). Everything else stays on the
primary: writes, SELECT ... FOR UPDATE, statements the session flushes, the caller's sign-in
(loaded before the view runs, so a revoked session is refused at once), and every route that
reads what its caller has just written (their own tips, tasks, profile, data copies).

Staleness rule, per process: the replica answers while it is *fresh*, checked at most every
REPLICA_CHECK_S seconds. It is fresh when it is in recovery (a standby, not a promoted copy) and
either has replayed everything the primary had written when the check began
(`pg_last_wal_replay_lsn() >= pg_current_wal_insert_lsn()`, which counts commits made with
`synchronous_commit = off` too; an idle primary writes nothing, so its replica is fresh however
old its last replayed commit is), or its last replayed commit is at
most REPLICA_MAX_LAG_S - REPLICA_CHECK_S old (so a verdict still in use is within the bound).
A replica that does not answer, or fails a statement, is not tried again for DOWN_FOR_S and the
request runs again on the primary. The `Qunfang-Read-Source` header of a heavy route says which
answered: `replica` or `primary`.

Jobs read their own writes: `reading_session` uses the replica only once it has replayed the
primary's WAL up to the moment the job asks (waiting at most JOB_CATCH_UP_WAIT_S).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask, Response, current_app, g, has_app_context
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

READ_SOURCE_HEADER = "Qunfang-Read-Source"
PRIMARY, REPLICA = "primary", "replica"
HEAVY_READ_ATTR = "_qf_heavy_read"
# g: the engine a heavy view's SELECTs go to (app/core/db.py), which answered, whether the
# replica failed a statement of this request.
ROUTING = "_qf_replica_engine"
_SOURCE = "_qf_read_source"
_FAILED = "_qf_replica_failed"
# After the replica failed (down, refused, a statement cancelled), the primary answers alone
# for this long before the replica is tried again.
DOWN_FOR_S = 5.0
JOB_CATCH_UP_WAIT_S = 2.0
_EXTENSION = "qunfang-replica"

_PRIMARY_LSN = "SELECT pg_current_wal_insert_lsn()"
_REPLICA_STATE = (
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= CAST(%(lsn)s AS pg_lsn), "
    "extract(epoch FROM now() - pg_last_xact_replay_timestamp())"
)


@dataclass(frozen=True)
class Verdict:
    fresh: bool
    reason: str
    until: float  # time.monotonic() until which it is trusted


class Replica:
    """One application's replica: its engine and the latest verdict on its freshness."""

    def __init__(
        self, primary: sa.Engine, engine: sa.Engine, *, max_lag_s: float, check_s: float
    ) -> None:
        self.primary = primary
        self.engine = engine
        self.max_lag_s = max_lag_s
        self.check_s = check_s
        self._lock = threading.Lock()
        self._verdict: Verdict | None = None
        sa.event.listen(engine, "handle_error", self._on_error)

    def fresh(self) -> bool:
        """Whether the replica may answer now (a verdict at most REPLICA_CHECK_S old)."""
        with self._lock:
            now = time.monotonic()
            if self._verdict is None or now >= self._verdict.until:
                self._verdict = self._check(now)
                if not self._verdict.fresh:
                    logger.warning("replica not used: %s", self._verdict.reason)
            return self._verdict.fresh

    def mark_down(self, reason: str) -> None:
        with self._lock:
            self._verdict = Verdict(False, reason, time.monotonic() + DOWN_FOR_S)

    def primary_lsn(self) -> str:
        with self.primary.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return conn.exec_driver_sql(_PRIMARY_LSN).scalar_one()

    def replayed(self, lsn: str) -> tuple[bool, bool, float | None]:
        """(in recovery, replayed up to `lsn`, seconds since its last replayed commit)."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            recovering, caught_up, behind = conn.exec_driver_sql(_REPLICA_STATE, {"lsn": lsn}).one()
        return bool(recovering), bool(caught_up), None if behind is None else float(behind)

    def _check(self, now: float) -> Verdict:
        try:
            lsn = self.primary_lsn()
            recovering, caught_up, behind = self.replayed(lsn)
        except sa_exc.DBAPIError as exc:
            return Verdict(False, f"unreachable ({type(exc.orig).__name__})", now + DOWN_FOR_S)
        if not recovering:
            return Verdict(False, "not a standby (promoted?)", now + DOWN_FOR_S)
        if caught_up:
            return Verdict(True, "caught up", now + self.check_s)
        if behind is not None and behind <= self.max_lag_s - self.check_s:
            return Verdict(True, f"{behind:.1f} s behind", now + self.check_s)
        return Verdict(False, f"lagging ({behind} s behind)", now + self.check_s)

    def caught_up_with_primary(self, wait_s: float | None = None) -> bool:
        """Whether the replica has replayed everything the primary had written now (waiting
        up to `wait_s`, by default JOB_CATCH_UP_WAIT_S, for it): reads there then see every
        commit made before the call."""
        try:
            lsn = self.primary_lsn()
            deadline = time.monotonic() + (JOB_CATCH_UP_WAIT_S if wait_s is None else wait_s)
            while True:
                recovering, caught_up, _behind = self.replayed(lsn)
                if not recovering:
                    return False
                if caught_up:
                    return True
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
        except sa_exc.DBAPIError as exc:
            self.mark_down(f"unreachable ({type(exc.orig).__name__})")
            return False

    def _on_error(self, context: sa.engine.ExceptionContext) -> None:
        if has_app_context():
            g.setdefault(_FAILED, True)


def init_app(app: Flask, primary: sa.Engine) -> None:
    """The replica of DATABASE_REPLICA_URL (if set), on the primary's engine options; and the
    header naming who answered a heavy route."""
    url = app.config["DATABASE_REPLICA_URL"]
    if url:
        options = {**app.config["SQLALCHEMY_ENGINE_OPTIONS"]}
        app.extensions[_EXTENSION] = Replica(
            primary,
            sa.create_engine(url, **options),
            max_lag_s=app.config["REPLICA_MAX_LAG_S"],
            check_s=app.config["REPLICA_CHECK_S"],
        )
    app.after_request(_say_who_answered)


def of(app: Flask) -> Replica | None:
    return app.extensions.get(_EXTENSION)


def _say_who_answered(response: Response) -> Response:
    # g outlives a request where the application context does (tests reuse one).
    source = g.pop(_SOURCE, None)
    if source is not None:
        response.headers[READ_SOURCE_HEADER] = source
    return response


def heavy_read(view: Callable) -> Callable:
    """Mark a view that only reads, heavily, and need not see its caller's latest writes: its
    SELECTs go to a fresh replica. Put it nearest the function (below the access rule, so
    that the caller is loaded and checked on the primary)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        replica = of(current_app)
        if replica is None or not replica.fresh():
            setattr(g, _SOURCE, PRIMARY)
            return view(*args, **kwargs)
        g.pop(_FAILED, None)
        setattr(g, _SOURCE, REPLICA)
        setattr(g, ROUTING, replica.engine)
        try:
            return view(*args, **kwargs)
        except sa_exc.DBAPIError as exc:
            if not g.pop(_FAILED, False):
                raise
            # The replica went away or cancelled the statement: the primary answers.
            replica.mark_down(f"failed a statement ({type(exc.orig).__name__})")
            from app.extensions import db

            db.session.rollback()
            setattr(g, ROUTING, None)
            setattr(g, _SOURCE, PRIMARY)
            return view(*args, **kwargs)
        finally:
            setattr(g, ROUTING, None)

    setattr(wrapper, HEAVY_READ_ATTR, True)
    return wrapper


@contextlib.contextmanager
def reading_session(primary_session: Session, purpose: str) -> Iterator[Session]:
    """For a job's heavy reads: a read-only session on the replica, in one REPEATABLE READ
    snapshot, when the replica has replayed every commit made before this call (the job sees
    what deferred it); else `primary_session` itself."""
    replica = of(current_app)
    if replica is None or not replica.caught_up_with_primary():
        logger.info("heavy read on the primary", extra={"purpose": purpose})
        yield primary_session
        return
    logger.info("heavy read on the replica", extra={"purpose": purpose})
    engine = replica.engine.execution_options(isolation_level="REPEATABLE READ")
    timeout_ms = current_app.config["JOB_STATEMENT_TIMEOUT_S"] * 1000
    try:
        with Session(engine) as session, session.begin():
            # A job's statements may run as long as on the primary (app/core/jobs.py).
            session.connection().exec_driver_sql(f"SET LOCAL statement_timeout = {timeout_ms}")
            yield session
    except sa_exc.DBAPIError as exc:
        if g.pop(_FAILED, False):
            replica.mark_down(f"failed a statement ({type(exc.orig).__name__})")
        raise
