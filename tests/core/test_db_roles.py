"""The application's database role owns nothing: it cannot erase the audit trail, or any
append-only history, by altering, disabling triggers on, truncating or dropping a table."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
import sqlalchemy as sa

from app.core.db_roles import APPEND_ONLY_TABLES

ERASURES = (
    "ALTER TABLE {table} DISABLE TRIGGER ALL",
    "ALTER TABLE {table} DISABLE TRIGGER USER",
    "ALTER TABLE {table} ADD COLUMN erased boolean",
    "ALTER TABLE {table} OWNER TO CURRENT_USER",
    "CREATE TRIGGER erase BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION now()",
    "UPDATE {table} SET {column} = {column}",
    "DELETE FROM {table}",
    "TRUNCATE {table}",
    "DROP TABLE {table}",
    "DROP TABLE {table} CASCADE",
)


def refused(connection: sa.Connection, statement: str) -> bool:
    """Whether the database refuses `statement` for lack of privilege (and changes nothing)."""
    savepoint = connection.begin_nested()
    try:
        connection.execute(sa.text(statement))
    except sa.exc.ProgrammingError as exc:
        savepoint.rollback()
        return isinstance(exc.orig, psycopg.errors.InsufficientPrivilege)
    savepoint.rollback()
    return False


def test_the_application_role_is_not_the_migrations_role(app, connection):
    app_user = connection.execute(sa.text("SELECT current_user")).scalar_one()
    owner = connection.execute(
        sa.text("SELECT tableowner FROM pg_tables WHERE tablename = 'audit_events'")
    ).scalar_one()
    assert app_user != owner


def test_the_application_role_owns_nothing(connection):
    owned = connection.execute(
        sa.text(
            """
            SELECT 'relation ' || relname FROM pg_class WHERE relowner = current_user::regrole
            UNION ALL
            SELECT 'function ' || proname FROM pg_proc WHERE proowner = current_user::regrole
            UNION ALL
            SELECT 'type ' || typname FROM pg_type WHERE typowner = current_user::regrole
            UNION ALL
            SELECT 'schema ' || nspname FROM pg_namespace WHERE nspowner = current_user::regrole
            UNION ALL
            SELECT 'database ' || datname FROM pg_database WHERE datdba = current_user::regrole
            """
        )
    ).scalars()
    assert list(owned) == []


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
@pytest.mark.parametrize("erasure", ERASURES)
def test_the_application_role_cannot_erase_append_only_history(connection, table, erasure):
    column = connection.execute(
        sa.text(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = :t AND is_identity = 'NO' ORDER BY ordinal_position LIMIT 1"
        ),
        {"t": table},
    ).scalar_one()
    assert refused(connection, erasure.format(table=table, column=column))


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_the_application_role_reads_and_adds_append_only_history(connection, table):
    privileges = connection.execute(
        sa.text(
            "SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', "
            "'REFERENCES', 'TRIGGER']) AS p WHERE has_table_privilege(:t, p)"
        ),
        {"t": table},
    ).scalars()
    assert list(privileges) == ["SELECT", "INSERT"]


def test_no_table_can_be_altered_truncated_or_dropped_by_the_application(connection):
    """The class, not the instance: every table of the schema, audited or not."""
    tables = connection.execute(
        sa.text(
            "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relkind IN ('r', 'p') "
            "AND c.relnamespace = 'public'::regnamespace"
        )
    ).scalars()
    for table in tables:
        for erasure in ("ALTER TABLE {table} DISABLE TRIGGER ALL", "TRUNCATE {table}"):
            assert refused(connection, erasure.format(table=table)), (table, erasure)
        assert refused(connection, f"DROP TABLE {table}"), table


def test_the_application_role_creates_no_tables_and_does_not_move_migrations(connection):
    assert refused(connection, "CREATE TABLE smuggled (id int)")
    assert refused(connection, "UPDATE alembic_version SET version_num = version_num")
    assert refused(connection, "DELETE FROM alembic_version")


def test_recent_check_ins_cannot_be_dropped_through_the_partition_function(connection):
    this_month = dt.date.today().replace(day=1)
    assert refused(connection, f"SELECT checkins_drop_partition('{this_month}')")


def test_tables_of_future_migrations_are_granted_by_default_privileges(owner_database_url, app):
    """A table the owner makes later (a new migration, a partition) is the application's to
    read and write, with nothing to re-grant by hand."""
    from tests.conftest import app_role_url

    app_role = sa.engine.make_url(app_role_url()).username
    owner = sa.create_engine(owner_database_url, poolclass=sa.pool.NullPool)
    try:
        with owner.connect() as conn, conn.begin() as transaction:
            conn.execute(sa.text("CREATE TABLE future_things (id serial PRIMARY KEY, name text)"))
            conn.execute(sa.text(f'SET LOCAL ROLE "{app_role}"'))
            conn.execute(sa.text("INSERT INTO future_things (name) VALUES ('x')"))
            assert conn.execute(sa.text("SELECT count(*) FROM future_things")).scalar() == 1
            assert refused(conn, "DROP TABLE future_things")
            transaction.rollback()
    finally:
        owner.dispose()
