"""SMS fallback for urgent tasks (issue #16): a consent of its own on users (recorded in
consent_events as kind 'sms'), and SMS recorded as deliveries of channel 'sms' (no device), at
most one per notification. Provider error codes grow to 80 characters (Tencent Cloud's reach
42: InvalidParameterValue.IncorrectPhoneNumber).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 14:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sms_consent", sa.Boolean(), server_default="false", nullable=False)
        )
        batch_op.add_column(
            sa.Column("sms_consent_changed_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_constraint("kind", type_="check")
        batch_op.create_check_constraint("kind", "kind IN ('terms', 'location_sharing', 'sms')")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=10), server_default="push", nullable=False)
        )
        batch_op.create_check_constraint("channel", "channel IN ('push', 'sms')")
        batch_op.alter_column(
            "error", existing_type=sa.String(length=40), type_=sa.String(length=80)
        )
        batch_op.create_index(
            "uq_deliveries_sms_notification",
            ["notification_id"],
            unique=True,
            postgresql_where=sa.text("channel = 'sms'"),
        )


def downgrade():
    op.execute("DELETE FROM deliveries WHERE channel = 'sms'")
    op.execute("UPDATE deliveries SET error = left(error, 40)")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("uq_deliveries_sms_notification")
        batch_op.alter_column(
            "error", existing_type=sa.String(length=80), type_=sa.String(length=40)
        )
        batch_op.drop_constraint("channel", type_="check")
        batch_op.drop_column("channel")
    op.execute("DELETE FROM consent_events WHERE kind = 'sms'")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_constraint("kind", type_="check")
        batch_op.create_check_constraint("kind", "kind IN ('terms', 'location_sharing')")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("sms_consent_changed_at")
        batch_op.drop_column("sms_consent")
