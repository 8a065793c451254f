"""Migrations are the schema: they run both ways, and the models agree with them."""

from __future__ import annotations

import datetime as dt

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from app.core.schema_version import MIGRATIONS_DIR, include_object
from app.extensions import db
from tests.conftest import make_app, server_url, throwaway_database


def test_models_and_migrations_agree(app, connection):
    context = MigrationContext.configure(
        connection, opts={"include_object": include_object, "compare_type": True}
    )
    assert compare_metadata(context, db.metadata) == []


def test_migrations_downgrade_to_base_and_upgrade_again():
    with throwaway_database(server_url()) as url:
        app = make_app(url)
        with app.app_context():
            flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
            flask_migrate.downgrade(directory=str(MIGRATIONS_DIR), revision="base")
            inspector = sa.inspect(db.engine)
            assert set(inspector.get_table_names()) <= {"alembic_version", "spatial_ref_sys"}
            flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
            assert "idempotency_records" in sa.inspect(db.engine).get_table_names()
            db.engine.dispose()


POISONED = """
INSERT INTO tip_categories (code, name, name_en) VALUES ('theft', '盗窃', 'Theft')
    ON CONFLICT DO NOTHING;
INSERT INTO tips (id, code, category_code, description, address_text, priority, anonymous,
                  occurred_at, created_at)
VALUES ('00000000-0000-4000-8000-000000000001', 'POISONED01', 'theft', '1 BC', '建外', 'normal',
        true, '0001-01-01T00:00:00+14:00', '2026-11-30T12:00:00+08:00'),
       ('00000000-0000-4000-8000-000000000002', 'HEALTHY002', 'theft', 'fine', '建外', 'normal',
        true, '2026-11-30T11:00:00+08:00', '2026-11-30T12:00:00+08:00');
INSERT INTO tasks (id, title, kind, starts_at, ends_at, needed, targeting_mode, created_at)
VALUES ('00000000-0000-4000-8000-000000000003', 'year 10000', 'event_support',
        '0001-01-01T00:00:00+14:00', '9999-12-31T23:59:59-14:00', 1, 'named',
        '2026-11-30T12:00:00+08:00');
"""


def test_0009_repairs_times_that_could_not_be_read_back_and_refuses_new_ones():
    """Rows stored before issue 14 (a tip of 1 BC, a task ending in the year 10000) made every
    read of them fail; 0009 fixes them by the API's rules, and CHECKs keep them out."""
    revision = ScriptDirectory(str(MIGRATIONS_DIR)).get_revision("0009")
    with throwaway_database(server_url()) as url:
        app = make_app(url)
        with app.app_context():
            flask_migrate.upgrade(directory=str(MIGRATIONS_DIR), revision=revision.down_revision)
            with db.engine.begin() as conn:
                conn.exec_driver_sql(POISONED)
            with db.engine.connect() as conn, pytest.raises(sa.exc.DataError):
                conn.execute(sa.text("SELECT occurred_at FROM tips")).all()

            flask_migrate.upgrade(directory=str(MIGRATIONS_DIR), revision="0009")
            with db.engine.begin() as conn:
                occurred = dict(conn.execute(sa.text("SELECT code, occurred_at FROM tips")).all())
                task = conn.execute(sa.text("SELECT starts_at, ends_at, created_at FROM tasks"))
                task = task.one()
            assert occurred == {
                "POISONED01": None,
                "HEALTHY002": dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC),
            }
            assert task.starts_at == task.created_at
            assert task.ends_at == task.created_at + dt.timedelta(days=92)
            with db.engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
                conn.execute(sa.text("UPDATE tips SET occurred_at = '0001-01-01T00:00:00Z'"))
            with db.engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
                conn.execute(sa.text("UPDATE tasks SET ends_at = '9999-12-31T23:59:59-14:00'"))
            db.engine.dispose()
