"""Migrations are the schema: they run both ways, and the models agree with them."""

from __future__ import annotations

import flask_migrate
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

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
