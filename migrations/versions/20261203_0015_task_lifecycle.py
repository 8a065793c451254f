"""Tasks: how many volunteers completed a task, counted as `accepted` is (under the task's row
lock), so that a dispatcher reads its lifecycle (open, filled, completed, expired, cancelled)
from the row, without counting thousands of recipients per task in a list.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 07:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("completed", sa.Integer(), server_default="0", nullable=False)
        )
    op.execute(
        """
        UPDATE tasks t SET completed = r.n
        FROM (SELECT task_id, count(*) AS n FROM task_recipients
              WHERE response = 'completed' GROUP BY task_id) r
        WHERE r.task_id = t.id
        """
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_check_constraint("completed", "completed BETWEEN 0 AND accepted")


def downgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_constraint("completed", type_="check")
        batch_op.drop_column("completed")
