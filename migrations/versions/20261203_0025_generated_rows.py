"""Rows made by `flask demo simulate` say so (issue #17): a `generated` flag on the tables the
simulated week writes to (users, tips, patrols, checkpoints, tasks, clue_batches), as stations
have had since the demo stations. Rows that hang off these (check-ins, visits, tip events, task
recipients, batch items) go with their parent. Demo data can then be told apart and removed.

Also two indexes on tips for the console's triage queue over a whole district filtered by status
or by category: without them the planner walks ix_tips_created backwards through every tip to
count the matches (EXPLAIN ANALYZE among 1,000,000 tips: 960,459 rows removed by the filter,
6.5 s; bench/bench_console_queue.py).

Revision ID: 0025
Revises: 0021
Create Date: 2026-12-03 09:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0021"
branch_labels = None
depends_on = None

TABLES = ("users", "tips", "patrols", "checkpoints", "tasks", "clue_batches")


def upgrade():
    for table in TABLES:
        op.add_column(
            table, sa.Column("generated", sa.Boolean(), server_default="false", nullable=False)
        )
    op.create_index("ix_tips_status_created", "tips", ["status", "created_at"])
    op.create_index("ix_tips_category_created", "tips", ["category_code", "created_at"])


def downgrade():
    op.drop_index("ix_tips_category_created", table_name="tips")
    op.drop_index("ix_tips_status_created", table_name="tips")
    for table in TABLES:
        op.drop_column(table, "generated")
