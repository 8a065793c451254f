"""How a request waits for PostgreSQL: round trips are a budget.

On loopback a round trip costs about as much as the statements of a typical request, so the hot
paths make one or two (tests/test_round_trips.py holds them to it):

- No pool ping before each checkout. A connection the server dropped (a restart, a failover)
  fails its first statement; SQLAlchemy then invalidates every connection of the pool opened
  before, and a request that only reads is run again, once, on a fresh connection. One that
  writes is answered 503 with `Retry-After: 1` (the pool is fresh by then): whether its
  statement committed before the connection died cannot be known here, and our writes are
  safe to send again (client ids, Idempotency-Key).
- No BEGIN/COMMIT around requests that only read (GET, HEAD, OPTIONS), nor around views that
  declare `@one_statement`: their connection runs in autocommit, where every statement is its
  own transaction. psycopg sends BEGIN as a round trip of its own before the first statement,
  and COMMIT as another; a request of two statements would wait four times.

A view marked `@one_statement` must write with a single statement (PostgreSQL makes one
statement atomic by itself), or open its own transaction (`session.begin_nested()` is not
enough: use a path that writes in one statement, or do not mark the view).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from flask import current_app, g, has_request_context, request
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import CompoundSelect, Engine, Select
from sqlalchemy.orm import Session

from app.core.replica import ROUTING

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ONE_STATEMENT = "_qunfang_one_statement"
_AUTOCOMMIT_FLAG = "_qunfang_autocommit"
_autocommit_engines: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def one_statement(view: Callable) -> Callable:
    """Mark a view whose writes are one statement each: it runs without BEGIN/COMMIT (until
    it calls `in_transaction`)."""
    setattr(view, _ONE_STATEMENT, True)
    return view


def in_transaction(session: Session) -> None:
    """From here on this request writes in a transaction: the autocommit connection goes back
    (nothing of it is pending: every statement on it committed), the next statement procures
    a connection that begins one, and the request's end commits it."""
    session.commit()
    setattr(g, _AUTOCOMMIT_FLAG, False)


def _autocommit(engine: Engine) -> Engine:
    """`engine` with its connections in autocommit (the same pool; SQLAlchemy sets the mode at
    checkout and restores it at checkin, neither costing a round trip with psycopg)."""
    if engine not in _autocommit_engines:
        _autocommit_engines[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return _autocommit_engines[engine]


def reads_only(clause: Any) -> bool:
    """Whether a statement only reads: a SELECT (or UNION of them) without FOR UPDATE/SHARE.
    Text statements may write: they are not judged."""
    return isinstance(clause, Select | CompoundSelect) and clause._for_update_arg is None


class RequestSession(FlaskSession):
    """Flask-SQLAlchemy's session, whose connections run in autocommit for requests that
    `decide_transactions` found need no transaction, and whose reads go to the replica while a
    `@heavy_read` view runs on it (app/core/replica.py)."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs: Any):
        engine = super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)
        if isinstance(engine, Engine) and has_request_context():
            replica = g.get(ROUTING)
            if replica is not None and not self._flushing and reads_only(clause):
                engine = replica
            if g.get(_AUTOCOMMIT_FLAG):
                return _autocommit(engine)
        return engine


def _handler(view: Callable | None, method: str) -> Callable | None:
    """The function that answers `method`: a MethodView's method, or the view itself."""
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        return getattr(view_class, method.lower(), None)
    return view


def needs_no_transaction() -> bool:
    """Whether this request reads only, or writes one statement at a time."""
    if request.method in SAFE_METHODS:
        return True
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return getattr(_handler(view, request.method), _ONE_STATEMENT, False)


def decide_transactions() -> None:
    """Before anything of the request touches the database (the rate limiter's key loads the
    caller): registered ahead of every other before-request function that may."""
    setattr(g, _AUTOCOMMIT_FLAG, needs_no_transaction())
