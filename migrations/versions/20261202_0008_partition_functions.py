"""Check-in partitions are made and dropped through functions that run as the owner.

The application's role owns nothing (app/core/db_roles.py), and only a table's owner may add a
partition to it or drop one. These two SECURITY DEFINER functions are all the DDL the
application may ask for: make the partition of a month, or drop the partition of a month that
ended more than 31 days ago (the shortest retention CHECKIN_RETENTION_DAYS allows), so that even
a compromised application cannot drop recent check-ins. Only the application's role may execute
them (granted by migrations/env.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FUNCTIONS = """
CREATE FUNCTION checkins_make_partition(month date) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    lower date := date_trunc('month', month)::date;
    upper date := (date_trunc('month', month) + interval '1 month')::date;
    name text := 'checkins_p' || to_char(lower, 'YYYYMM');
BEGIN
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS public.%I PARTITION OF public.checkins '
        'FOR VALUES FROM (%L) TO (%L)',
        name, lower::text || ' 00:00:00+00', upper::text || ' 00:00:00+00');
    RETURN name;
END
$$;

CREATE FUNCTION checkins_drop_partition(month date) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    lower date := date_trunc('month', month)::date;
    upper timestamptz := (date_trunc('month', month) + interval '1 month')::date::text
        || ' 00:00:00+00';
    name text := 'checkins_p' || to_char(lower, 'YYYYMM');
BEGIN
    IF upper > now() - interval '31 days' THEN
        RAISE EXCEPTION 'check-ins of % are within the shortest retention (31 days)', name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS public.%I', name);
    RETURN name;
END
$$;

REVOKE ALL ON FUNCTION checkins_make_partition(date) FROM PUBLIC;
REVOKE ALL ON FUNCTION checkins_drop_partition(date) FROM PUBLIC;
"""


def upgrade():
    op.execute(FUNCTIONS)


def downgrade():
    op.execute("DROP FUNCTION IF EXISTS checkins_drop_partition(date)")
    op.execute("DROP FUNCTION IF EXISTS checkins_make_partition(date)")
