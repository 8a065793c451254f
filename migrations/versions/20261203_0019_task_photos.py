"""Photos of a completed task are attached to it, as a tip's are to the tip: they stop expiring.

Before, a volunteer's completion photos stayed "unattached uploads" (only the answer listed
their ids), so the job that deletes unattached uploads deleted them a day later. Photos already
named by a completion are attached here, if they still exist.

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-03 07:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.add_column(sa.Column("task_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            "fk_media_task_id_tasks", "tasks", ["task_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_index("ix_media_task_id", ["task_id"], unique=False)
        batch_op.drop_constraint("attached_or_expiring", type_="check")
    op.execute(
        """
        UPDATE media m SET task_id = r.task_id, expires_at = NULL
        FROM task_recipients r
        WHERE m.id = ANY (r.media_ids) AND r.response = 'completed'
          AND m.tip_id IS NULL AND m.owner_id = r.user_id
        """
    )
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.create_check_constraint(
            "attached_or_expiring",
            "(tip_id IS NULL AND task_id IS NULL) = (expires_at IS NOT NULL)",
        )
        batch_op.create_check_constraint("one_owner_object", "tip_id IS NULL OR task_id IS NULL")


def downgrade():
    op.execute("DELETE FROM media WHERE task_id IS NOT NULL")
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.drop_constraint("one_owner_object", type_="check")
        batch_op.drop_constraint("attached_or_expiring", type_="check")
        batch_op.create_check_constraint(
            "attached_or_expiring", "(tip_id IS NULL) = (expires_at IS NOT NULL)"
        )
        batch_op.drop_index("ix_media_task_id")
        batch_op.drop_constraint("fk_media_task_id_tasks", type_="foreignkey")
        batch_op.drop_column("task_id")
