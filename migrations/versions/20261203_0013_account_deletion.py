"""Account deletion (issue #21, PIPL Art. 47): a request waits out a grace period in
`account_deletions`, then a job erases the person.

- `account_deletions`: one pending request per account (dropped with the account, or when a
  sign-in cancels it).
- `anonymous_service_totals`: service time outlives an erased volunteer only as totals per
  community, month and kind, added up across everyone erased (no row is one person's).
- `users.verified_by` becomes ON DELETE SET NULL: an erased staff member's verifications stay
  (the audit trail keeps who verified); before, any verification blocked deleting its author.
- `data_archives`: ZIP copies of a person's data (with their tips' photos) made by a job, kept
  for a few days for download.
- `consent_events_erase(uuid)`: consent history is append-only for the application's role; an
  account that must stay as a tombstone (a clue batch handed to the police names it) still has
  its consent history erased, through this SECURITY DEFINER function and nothing broader.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 07:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ERASE_CONSENTS = """
CREATE FUNCTION consent_events_erase(person uuid) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    erased integer;
BEGIN
    -- Only for an account whose erasure is due: never a way to rewrite a live history.
    IF NOT EXISTS (
        SELECT 1 FROM public.account_deletions
        WHERE user_id = person AND erase_after <= clock_timestamp()
    ) THEN
        RAISE EXCEPTION 'no erasure of % is due', person;
    END IF;
    DELETE FROM public.consent_events WHERE user_id = person;
    GET DIAGNOSTICS erased = ROW_COUNT;
    RETURN erased;
END $$;
REVOKE ALL ON FUNCTION consent_events_erase(uuid) FROM PUBLIC;
"""


def upgrade():
    op.create_table(
        "account_deletions",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erase_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by_staff", sa.Boolean(), server_default="false", nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_account_deletions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_account_deletions")),
    )
    op.create_index(
        "ix_account_deletions_erase_after", "account_deletions", ["erase_after"], unique=False
    )
    op.create_table(
        "anonymous_service_totals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=True),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anonymous_service_totals")),
        sa.UniqueConstraint(
            "community_id",
            "month",
            "kind",
            name="uq_anonymous_service_totals_place_month_kind",
            postgresql_nulls_not_distinct=True,
        ),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_users_verified_by_users"), type_="foreignkey")
        batch_op.create_foreign_key(
            op.f("fk_users_verified_by_users"),
            "users",
            ["verified_by"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "data_archives",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("byte_size", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'ready', 'failed')", name=op.f("ck_data_archives_status")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_data_archives_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_archives")),
    )
    op.create_index("ix_data_archives_user_id", "data_archives", ["user_id"], unique=False)
    op.create_index("ix_data_archives_expires_at", "data_archives", ["expires_at"], unique=False)
    op.execute(ERASE_CONSENTS)


def downgrade():
    op.execute("DROP FUNCTION consent_events_erase(uuid)")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_users_verified_by_users"), type_="foreignkey")
        batch_op.create_foreign_key(
            op.f("fk_users_verified_by_users"), "users", ["verified_by"], ["id"]
        )
    op.drop_table("data_archives")
    op.drop_table("anonymous_service_totals")
    op.drop_index("ix_account_deletions_erase_after", table_name="account_deletions")
    op.drop_table("account_deletions")
