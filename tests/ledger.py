"""What a request wrote to the database, for tests that must show it wrote nothing."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import text

# Tables no request writes to and too big to scan after every request.
_SKIPPED = {"spatial_ref_sys"}


class Ledger:
    """Tables a request changed since `mark()`: rows inserted or updated (their `xmin` is a
    transaction id newer than the mark: the app's work runs in savepoints of the test's
    transaction, each with an id of its own) and rows deleted (fewer rows than at the mark).
    Requests that rolled back leave nothing visible, and so nothing here."""

    def __init__(self, connection: sa.Connection):
        self.connection = connection
        tables = connection.execute(
            text(
                """
                SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                ORDER BY c.relname
                """
            )
        ).scalars()
        self._census = text(
            " UNION ALL ".join(
                f"SELECT '{name}', count(*), "
                f'count(*) FILTER (WHERE xmin::text::bigint > :mark) FROM "{name}"'
                for name in tables
                if name not in _SKIPPED
            )
        )
        self.mark()

    def mark(self) -> None:
        # A transaction id taken now, elsewhere: every (sub)transaction id handed out before it
        # is lower, every later one higher. (A snapshot's xmax will not do: the test's own
        # transaction is still open, so ids it handed out earlier can lie above it.)
        with self.connection.engine.connect() as elsewhere:
            self._mark = elsewhere.execute(
                text("SELECT pg_current_xact_id()::text::bigint")
            ).scalar_one()
            elsewhere.commit()
        self._counts = self._rows()

    def _rows(self) -> dict[str, tuple[int, int]]:
        rows = self.connection.execute(self._census, {"mark": self._mark})
        return {name: (count, newer) for name, count, newer in rows}

    def changes(self) -> list[str]:
        """`table: +inserted/updated, -deleted` for every table the requests since the mark
        changed (empty when they changed nothing)."""
        changed = []
        for name, (count, newer) in self._rows().items():
            deleted = self._counts.get(name, (count, 0))[0] - count
            if newer or deleted > 0:
                changed.append(f"{name}: {newer} written, {max(deleted, 0)} deleted")
        return changed
