"""Consents that match PIPL (issue #21 item 5): processing the resident ID number is a consent
of its own (users.id_number_consent, recorded in consent_events as kind 'id_number'), and a
guardian's consent for a volunteer under 18 where that is allowed (guardian_consents, kind
'guardian').

Accounts that hold an ID number from before give it under the terms they accepted: they start
with the consent on and no changed-at (no separate consent event is invented for them);
withdrawing it erases the number as for everyone.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 08:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

KINDS = "kind IN ('terms', 'location_sharing', 'sms', 'id_number', 'guardian')"
KINDS_BEFORE = "kind IN ('terms', 'location_sharing', 'sms')"


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("id_number_consent", sa.Boolean(), server_default="false", nullable=False)
        )
        batch_op.add_column(
            sa.Column("id_number_consent_changed_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.execute("UPDATE users SET id_number_consent = true WHERE id_number_digest IS NOT NULL")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_constraint("kind", type_="check")
        batch_op.create_check_constraint("kind", KINDS)
    op.create_table(
        "guardian_consents",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("guardian_name", sa.String(length=50), nullable=False),
        sa.Column("guardian_phone", sa.String(length=11), nullable=False),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_guardian_consents_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_guardian_consents")),
    )


def downgrade():
    op.drop_table("guardian_consents")
    op.execute("DELETE FROM consent_events WHERE kind IN ('id_number', 'guardian')")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_constraint("kind", type_="check")
        batch_op.create_check_constraint("kind", KINDS_BEFORE)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("id_number_consent_changed_at")
        batch_op.drop_column("id_number_consent")
