"""Retention of personal information (issue #21 item 4): what the jobs of app/privacy/jobs.py
need from the schema.

- `tips.reporter_contact_expired_at`: a named tip closed longer than
  TIP_REPORTER_CONTACT_DAYS_AFTER_CLOSE no longer discloses its reporter to staff or to the
  police (the job stamps it and withdraws the police-contact consent); the link itself stays so
  that the reporter still finds the tip among their own.
- `clue_batches.files_deleted_at`: the platform's copy of an acknowledged batch's files is
  deleted BATCH_FILE_DAYS_AFTER_ACK after acknowledgement; the row, its items, digest and
  signature stay as the record of what was handed over.
- `audit_events_purge(timestamptz)`: the audit trail stays append-only for every role, except
  that this SECURITY DEFINER function (the only door; the application's role holds no DELETE on
  the table) removes rows older than its cutoff, and refuses any cutoff less than 183 days ago
  (Cybersecurity Law Art. 21: logs kept at least six months). The trigger lets a DELETE through
  only inside that function (a transaction-local flag it sets) and only for rows that old, so
  the floor holds even for the owner's own statements.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 07:15:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

AUDIT_FLOOR = "183 days"

PURGEABLE = f"""
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('qunfang.audit_purge', true) = 'on'
       AND OLD.at < clock_timestamp() - interval '{AUDIT_FLOOR}' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE FUNCTION audit_events_purge(cutoff timestamptz) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    purged integer;
BEGIN
    IF cutoff > clock_timestamp() - interval '{AUDIT_FLOOR}' THEN
        RAISE EXCEPTION 'audit rows are kept at least {AUDIT_FLOOR}; cutoff % refused', cutoff
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('qunfang.audit_purge', 'on', true);
    DELETE FROM public.audit_events WHERE at < cutoff;
    GET DIAGNOSTICS purged = ROW_COUNT;
    PERFORM set_config('qunfang.audit_purge', 'off', true);
    RETURN purged;
END $$;
REVOKE ALL ON FUNCTION audit_events_purge(timestamptz) FROM PUBLIC;
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


def upgrade():
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reporter_contact_expired_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("clue_batches", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("files_deleted_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.execute(PURGEABLE)


def downgrade():
    op.execute("DROP FUNCTION audit_events_purge(timestamptz)")
    op.execute(APPEND_ONLY)
    with op.batch_alter_table("clue_batches", schema=None) as batch_op:
        batch_op.drop_column("files_deleted_at")
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.drop_column("reporter_contact_expired_at")
