"""Two database roles: the owner, that migrations run as, and the application's, that owns
nothing.

A role that owns a table may ALTER it, disable its triggers, TRUNCATE or DROP it, whatever the
grants say. So the application (requests, jobs, commands) connects as a role that owns nothing
and holds only what `grant_app_role` gives it: reading and writing rows, using sequences,
procrastinate's functions, and the two functions that make and drop the monthly partitions of
check-ins (migration 0008: they run as the owner, and refuse to drop a month that is not past the
shortest retention). On the append-only tables it may only read and add rows.

`migrations/env.py` calls `grant_app_role` after every upgrade, so the grants follow the schema;
default privileges give the same to tables and sequences made later by the owner (partitions,
tables of future migrations).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

# History that is never rewritten: the application may read and add rows, nothing else.
# (audit_events also refuses UPDATE, DELETE and TRUNCATE to every role by triggers, migration
# 0005; its owner is the only role that could take those triggers away.)
APPEND_ONLY_TABLES = ("audit_events", "consent_events")
# Read by /readyz; written by migrations only.
READ_ONLY_TABLES = ("alembic_version",)
# SECURITY DEFINER functions the application calls (migrations 0008, 0013 and 0016).
APP_FUNCTIONS = (
    "checkins_make_partition(date)",
    "checkins_drop_partition(date)",
    "consent_events_erase(uuid)",
    "audit_events_purge(timestamptz)",
)

# What the current role owns in the public schema: tables, views, sequences.
_OWNED = text(
    """
    SELECT c.oid::regclass::text AS name, c.relkind = 'S' AS is_sequence FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace
      AND c.relowner = current_user::regrole
      AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
    ORDER BY 1
    """
)


def _existing(connection: Connection, names: tuple[str, ...], kind: str) -> list[str]:
    lookup = "to_regclass" if kind == "table" else "to_regprocedure"
    return [
        name
        for name in names
        if connection.execute(text(f"SELECT {lookup}(:name) IS NOT NULL"), {"name": name}).scalar()
    ]


def grant_app_role(connection: Connection, role: str) -> None:
    """Give `role` what the application needs on the schema the current role owns; no more."""
    quoted = connection.dialect.identifier_preparer.quote(role)
    connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {quoted}"))
    for name, is_sequence in connection.execute(_OWNED).all():
        if is_sequence:
            connection.execute(text(f"GRANT USAGE, SELECT ON SEQUENCE {name} TO {quoted}"))
        else:
            connection.execute(text(f"REVOKE ALL ON TABLE {name} FROM {quoted}"))
            connection.execute(
                text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {name} TO {quoted}")
            )
    connection.execute(
        text(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {quoted}"
        )
    )
    connection.execute(
        text(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            f"GRANT USAGE, SELECT ON SEQUENCES TO {quoted}"
        )
    )
    for table in _existing(connection, APPEND_ONLY_TABLES, "table"):
        connection.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {quoted}"))
    for table in _existing(connection, READ_ONLY_TABLES, "table"):
        connection.execute(text(f"REVOKE INSERT, UPDATE, DELETE ON {table} FROM {quoted}"))
    for function in _existing(connection, APP_FUNCTIONS, "function"):
        connection.execute(text(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC"))
        connection.execute(text(f"GRANT EXECUTE ON FUNCTION {function} TO {quoted}"))
