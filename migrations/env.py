"""Alembic environment (Flask-Migrate): the only way the schema changes.

Run through `flask --app wsgi db upgrade` (or `db migrate -m "..."` to draft a revision from the
models). GeoAlchemy2's helpers render spatial columns and indexes; tables owned by PostGIS and by
procrastinate (applied from its own SQL by a migration) are left out of autogenerate.

Migrations run as the owner's role (MIGRATION_DATABASE_URL; the private clusters' owner by
default), and then grant the application's role (DATABASE_URL's user) what it needs, and no more
(app/core/db_roles.py). With one URL for both, nothing is granted: the one role owns everything.
"""

import logging

import sqlalchemy as sa
from alembic import context
from flask import current_app
from geoalchemy2 import alembic_helpers

from app.core.db_roles import grant_app_role
from app.core.schema_version import include_object

logger = logging.getLogger("alembic.env")
config = context.config
db = current_app.extensions["migrate"].db


def process_revision_directives(context_, revision, directives):
    """No empty revision from `db migrate`; GeoAlchemy2's rewriter for spatial columns."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")
        return
    alembic_helpers.writer(context_, revision, directives)


def configure_args() -> dict:
    args = dict(current_app.extensions["migrate"].configure_args)
    args.setdefault("compare_type", True)
    args.update(
        target_metadata=db.metadata,
        include_object=include_object,
        render_item=alembic_helpers.render_item,
        process_revision_directives=process_revision_directives,
    )
    return args


def owner_engine() -> sa.Engine:
    url = current_app.config.get("MIGRATION_DATABASE_URI")
    if not url or sa.engine.make_url(url) == db.engine.url:
        return db.engine
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def app_role(owner: sa.Engine) -> str | None:
    """The application's role when it differs from the one migrating, else None."""
    app_user = db.engine.url.username
    return app_user if app_user and app_user != owner.url.username else None


def run_migrations_offline():
    url = owner_engine().url.render_as_string(hide_password=False)
    context.configure(url=url, literal_binds=True, **configure_args())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    engine = owner_engine()
    role = app_role(engine)
    with engine.connect() as connection:
        context.configure(connection=connection, **configure_args())
        with context.begin_transaction():
            context.run_migrations()
            if role:
                grant_app_role(connection, role)
    if engine is not db.engine:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
