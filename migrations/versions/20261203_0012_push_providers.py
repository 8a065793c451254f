"""Push: each device says which service reaches it (fcm, apns or jpush: mainland-China phones
have no Google services). Devices registered before knew only FCM, so they become fcm.

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


def upgrade():
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("provider", sa.String(length=10), server_default="fcm", nullable=False)
        )
        batch_op.create_check_constraint("provider", "provider IN ('fcm', 'apns', 'jpush')")


def downgrade():
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_constraint("provider", type_="check")
        batch_op.drop_column("provider")
