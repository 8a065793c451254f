"""Tips: the public summary that staff approve, the only text of a tip Open311 publishes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 16:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_summary", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("public_summary_by", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("public_summary_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_tips_public_summary_by_users"),
            "users",
            ["public_summary_by"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade():
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tips_public_summary_by_users"), type_="foreignkey")
        batch_op.drop_column("public_summary_at")
        batch_op.drop_column("public_summary_by")
        batch_op.drop_column("public_summary")
