"""Round trips to PostgreSQL, counted on the wire.

SQLAlchemy's statement events do not see what costs a round trip without being a statement the
code wrote: psycopg's BEGIN, COMMIT and ROLLBACK, the pool's pings. libpq's own trace does: it
logs every protocol message, and the server ends every exchange the client waits for (a simple
`Query`, or an extended-protocol `Sync`) with one `ReadyForQuery`. So the number of
`ReadyForQuery` messages a connection received is the number of times the code waited for the
server.

`RoundTrips(engine)` traces every connection while it is checked out of the engine's pool (a
request holds one from its first statement to its end, the pool's reset included) and keeps,
for each checkout, the exchanges it made: `trips.during()` around the code to measure.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from psycopg import pq

_FLAGS = pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE
# What the client sent, as libpq's trace writes it: `F <len> Query "BEGIN"` or
# `F <len> Parse "" "SELECT ..." ...`.
# A statement's text may span lines; a Parse names its prepared statement first ("" unnamed).
_SENT = re.compile(r'^F\t\d+\t(?:Query|Parse)\t (?:"[^"\n]*" )?"((?:[^"]|"")*)"', re.M)


@dataclass
class Exchanges:
    trips: int = 0
    # The text of each statement sent (a prepared statement executed again sends none).
    sent: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        listing = "\n".join(f"  - {text[:160]}" for text in self.sent)
        return f"{self.trips} round trips:\n{listing}"


class RoundTrips:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._current: Exchanges | None = None
        sa.event.listen(engine, "checkout", self._trace)
        sa.event.listen(engine, "checkin", self._collect)

    def close(self) -> None:
        sa.event.remove(self.engine, "checkout", self._trace)
        sa.event.remove(self.engine, "checkin", self._collect)

    @contextlib.contextmanager
    def during(self) -> Iterator[Exchanges]:
        """The exchanges of every connection checked out and returned inside the block."""
        self._current = Exchanges()
        try:
            yield self._current
        finally:
            self._current = None

    def _trace(self, dbapi_connection, record, _proxy) -> None:
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed at checkin
        # libpq writes through its own FILE on a copy of the descriptor; untracing flushes it.
        copy = os.dup(log.fileno())
        dbapi_connection.pgconn.trace(copy)
        dbapi_connection.pgconn.set_trace_flags(_FLAGS)
        record.info["round_trip_log"] = (log, copy)

    def _collect(self, dbapi_connection, record) -> None:
        traced = record.info.pop("round_trip_log", None)
        if traced is None:
            return
        log, copy = traced
        if dbapi_connection is not None:
            dbapi_connection.pgconn.untrace()
        os.close(copy)
        log.seek(0)
        trace = log.read().decode("utf-8", "replace")
        log.close()
        if self._current is None:
            return
        self._current.trips += len(re.findall(r"^B\t\d+\tReadyForQuery\t", trace, re.M))
        self._current.sent += [" ".join(m.group(1).split()) for m in _SENT.finditer(trace)]
