"""Rows made by `flask demo simulate` say so (issue #17): a `generated` flag on the tables the
simulated week writes to (users, tips, patrols, checkpoints, tasks, clue_batches), as stations
have had since the demo stations. Rows that hang off these (check-ins, visits, tip events, task
recipients, batch items) go with their parent. Demo data can then be told apart and removed.

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


def downgrade():
    for table in TABLES:
        op.drop_column(table, "generated")
