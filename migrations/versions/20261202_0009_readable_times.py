"""Poisoned times: rows holding times the API now refuses are fixed once, and CHECKs keep any
writer from storing unreadable ones again.

Until issue 14, POST /tips took `occurred_at` 0001-01-01T00:00:00+14:00 (stored as 1 BC) and
POST /tasks an `ends_at` of 9999-12-31T23:59:59-14:00 (stored in the year 10000). Python has no
year 0 or 10000, so every read of such a row failed: GET /tips and GET /tasks answered 422 to
all staff of the place, clue batches holding the tip failed for good, and so did the task's
fan-out job. Reading that tolerates them would have to guess a value in every query and export;
the values mean nothing (no tip happened in 1 BC), so they are fixed here, by the rules the API
now applies (app/core/fields.py, app/tasks/schemas.py):

- a tip's `occurred_at` before 2000, or more than a day after the tip came in, becomes NULL:
  unknown, as for a tipster who gave no time;
- a task's `starts_at` before 2000 or more than 92 days after the task was made becomes the
  time it was made (or a minute before its end); an `ends_at` more than 92 days after that
  becomes that limit (at least an hour after the start).

The downgrade drops the CHECKs; the poisoned values are not restored.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 16:00:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FIX_TIPS = """
UPDATE tips SET occurred_at = NULL
WHERE occurred_at < '2000-01-01 00:00+00' OR occurred_at > created_at + interval '1 day'
"""
FIX_TASK_STARTS = """
UPDATE tasks SET starts_at = least(created_at, ends_at - interval '1 minute')
WHERE starts_at < '2000-01-01 00:00+00' OR starts_at > created_at + interval '92 days'
"""
FIX_TASK_ENDS = """
UPDATE tasks
SET ends_at = greatest(created_at + interval '92 days', starts_at + interval '1 hour')
WHERE ends_at > created_at + interval '92 days'
"""


def upgrade():
    op.execute(FIX_TIPS)
    op.execute(FIX_TASK_STARTS)
    op.execute(FIX_TASK_ENDS)
    op.create_check_constraint(
        op.f("ck_tips_occurred_at_readable"),
        "tips",
        "occurred_at BETWEEN '2000-01-01 00:00+00' AND '2100-01-01 00:00+00'",
    )
    op.create_check_constraint(
        op.f("ck_tasks_times_readable"),
        "tasks",
        "starts_at >= '2000-01-01 00:00+00' AND ends_at < '2100-01-01 00:00+00'",
    )


def downgrade():
    op.drop_constraint(op.f("ck_tasks_times_readable"), "tasks", type_="check")
    op.drop_constraint(op.f("ck_tips_occurred_at_readable"), "tips", type_="check")
