"""Push: each device says which service reaches it (fcm, apns or jpush: mainland-China phones
have no Google services). Devices registered before knew only FCM, so they become fcm.

A delivery without credentials for its provider is `logged`, not `sent` (staff must not read a
log line as a phone reached), and the app's receipt of a notification is kept (`received_at`),
the count staff can trust.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 12:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

STATUSES_BEFORE = "'pending', 'sent', 'unregistered', 'invalid', 'failed'"
STATUSES_NOW = "'pending', 'sent', 'logged', 'unregistered', 'invalid', 'failed'"


def upgrade():
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("provider", sa.String(length=10), server_default="fcm", nullable=False)
        )
        batch_op.create_check_constraint("provider", "provider IN ('fcm', 'apns', 'jpush')")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("status", type_="check")
        batch_op.create_check_constraint("status", f"status IN ({STATUSES_NOW})")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("received_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_notifications_received",
            ["subject_id"],
            unique=False,
            postgresql_where=sa.text("received_at IS NOT NULL"),
        )


def downgrade():
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_received")
        batch_op.drop_column("received_at")
    op.execute("UPDATE deliveries SET status = 'sent' WHERE status = 'logged'")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("status", type_="check")
        batch_op.create_check_constraint("status", f"status IN ({STATUSES_BEFORE})")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_constraint("provider", type_="check")
        batch_op.drop_column("provider")
