"""Foundation: PostGIS, the procrastinate job queue, idempotency records.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from pathlib import Path

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# procrastinate's schema as shipped with the pinned version, copied so that this migration keeps
# meaning the same thing when the package is upgraded (upgrades add a migration that applies the
# package's own migration files from sql/migrations/ for the versions in between).
PROCRASTINATE_SCHEMA = (
    Path(__file__).resolve().parent.parent / "sql" / "procrastinate-3.10.0-schema.sql"
)


def _run_sql_script(sql: str) -> None:
    if context.is_offline_mode():  # `flask db upgrade --sql`: print it
        op.execute(sa.text(sql.replace(":", r"\:")))
        return
    # psycopg runs a multi-statement script when no parameters are passed; going through the
    # driver connection keeps SQLAlchemy from reading ":name" or "%" in it as parameters.
    op.get_bind().connection.driver_connection.execute(sql)


def upgrade():
    # A no-op where PostGIS is already installed (scripts/db.sh installs it in template1 as the
    # superuser, since the application's role cannot); creates it where the role may.
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    _run_sql_script(PROCRASTINATE_SCHEMA.read_text(encoding="utf-8"))

    op.create_table(
        "idempotency_records",
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(length=32), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_records")),
    )
    op.create_index(
        op.f("ix_idempotency_records_expires_at"), "idempotency_records", ["expires_at"]
    )


def downgrade():
    op.drop_index(op.f("ix_idempotency_records_expires_at"), table_name="idempotency_records")
    op.drop_table("idempotency_records")
    _run_sql_script(
        """
        DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
            procrastinate_jobs, procrastinate_workers CASCADE;
        DO $$ DECLARE f record; BEGIN
            FOR f IN SELECT oid::regprocedure AS signature FROM pg_proc
                     WHERE proname LIKE 'procrastinate\\_%' LOOP
                EXECUTE 'DROP FUNCTION IF EXISTS ' || f.signature || ' CASCADE';
            END LOOP;
        END $$;
        DROP TYPE IF EXISTS procrastinate_job_status, procrastinate_job_event_type,
            procrastinate_job_to_defer_v1 CASCADE;
        """
    )
