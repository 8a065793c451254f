"""Auth: every change to an account, a login session or a jurisdiction grant announces itself on
the `qunfang_auth` channel with the user's id, so that each API process drops what it cached
about that user (app/auth/identity_cache.py).

Triggers, not application code: every writer (requests, jobs, `flask` commands, SQL typed by
hand as the owner) invalidates. The owner creates them; they fire for any role, the
application's included, which owns nothing and needs no more grants (pg_notify is PUBLIC).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 10:00:00

"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

CHANNEL = "qunfang_auth"
# table -> (the column holding the user's id, the operations that announce)
TABLES = {
    "users": ("id", "UPDATE OR DELETE"),
    "auth_sessions": ("user_id", "UPDATE OR DELETE"),
    "user_areas": ("user_id", "INSERT OR UPDATE OR DELETE"),
}


def upgrade():
    # A new login session needs no announcement: nobody has cached it yet. An UPDATE that moves
    # a row to another user announces both users. PostgreSQL folds identical notifications of one
    # transaction into one, so a bulk revocation sends each user once.
    op.execute(
        f"""
        CREATE FUNCTION auth_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            column_name text := TG_ARGV[0];
            old_id text;
            new_id text;
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                old_id := to_jsonb(OLD) ->> column_name;
                PERFORM pg_notify('{CHANNEL}', old_id);
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                new_id := to_jsonb(NEW) ->> column_name;
                IF new_id IS DISTINCT FROM old_id THEN
                    PERFORM pg_notify('{CHANNEL}', new_id);
                END IF;
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    for table, (column, events) in TABLES.items():
        op.execute(
            f"CREATE TRIGGER {table}_auth_notify AFTER {events} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION auth_notify('{column}')"
        )


def downgrade():
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_auth_notify ON {table}")
    op.execute("DROP FUNCTION auth_notify()")
