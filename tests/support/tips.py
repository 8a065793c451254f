"""Tips in bulk: the million tips the tip list, the console queue and the grid benchmarks
measure, made by one INSERT ... SELECT.

Created over the last 365 days, spread evenly over the demo's communities (a point within about
200 m of each community's centre, the path columns copied from its area row), one of the seeded
categories each, 70% anonymous (the others reported by one account). Status by age: of the last
7 days mostly open (50% submitted, 25% triaged, 10% assigned, 10% in progress, 5% resolved); 7-30
days half open (10/15/10/15%, resolved 35%, rejected 15%); older ones 2% still open, 78%
resolved, 15% rejected, 5% referred to the police. The H3 cells and grid cells stay empty."""

from __future__ import annotations

import os
import time
from typing import Any

import sqlalchemy as sa

TIPS = int(os.environ.get("BENCH_TIPS", 1_000_000))
REPORTER_PHONE = "13800000005"  # the demo volunteer: the reporter of the named tips

_FILL_SQL = """
WITH communities AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY code) AS i, id, district_id, subdistrict_id,
           ST_PointOnSurface(geom) AS centre
    FROM areas WHERE level = 'community'
), categories AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY code) AS i, code, name, default_priority
    FROM tip_categories
), draws AS (
    SELECT n,
           now() - random() * interval '365 days' AS created_at,
           1 + floor(random() * (SELECT count(*) FROM communities))::int AS community,
           1 + floor(random() * (SELECT count(*) FROM categories))::int AS category,
           random() AS status_draw,
           random() < 0.7 AS anonymous
    FROM generate_series(1, :count) AS n
)
INSERT INTO tips (id, code, category_code, description, geom, accuracy_m, occurred_at, status,
                  priority, anonymous, reporter_id, district_id, subdistrict_id, community_id,
                  status_changed_at, version, created_at, updated_at)
SELECT gen_random_uuid(),
       'B' || lpad(d.n::text, 9, '0'),
       cat.code,
       '基准测试线索 ' || d.n || '：' || cat.name || '，' || md5(d.n::text),
       ST_SetSRID(ST_MakePoint(ST_X(c.centre) + (random() - 0.5) * 0.004,
                               ST_Y(c.centre) + (random() - 0.5) * 0.004), 4326),
       5 + random() * 45,
       d.created_at - random() * interval '2 hours',
       CASE
           WHEN d.created_at > now() - interval '7 days' THEN CASE
               WHEN d.status_draw < 0.50 THEN 'submitted'
               WHEN d.status_draw < 0.75 THEN 'triaged'
               WHEN d.status_draw < 0.85 THEN 'assigned'
               WHEN d.status_draw < 0.95 THEN 'in_progress'
               ELSE 'resolved' END
           WHEN d.created_at > now() - interval '30 days' THEN CASE
               WHEN d.status_draw < 0.10 THEN 'submitted'
               WHEN d.status_draw < 0.25 THEN 'triaged'
               WHEN d.status_draw < 0.35 THEN 'assigned'
               WHEN d.status_draw < 0.50 THEN 'in_progress'
               WHEN d.status_draw < 0.85 THEN 'resolved'
               ELSE 'rejected' END
           ELSE CASE
               WHEN d.status_draw < 0.005 THEN 'submitted'
               WHEN d.status_draw < 0.010 THEN 'triaged'
               WHEN d.status_draw < 0.015 THEN 'assigned'
               WHEN d.status_draw < 0.020 THEN 'in_progress'
               WHEN d.status_draw < 0.800 THEN 'resolved'
               WHEN d.status_draw < 0.950 THEN 'rejected'
               ELSE 'referred_to_police' END
       END,
       cat.default_priority,
       d.anonymous,
       CASE WHEN d.anonymous THEN NULL ELSE :reporter END,
       c.district_id, c.subdistrict_id, c.id,
       d.created_at, 1, d.created_at, d.created_at
FROM draws d
JOIN communities c ON c.i = d.community
JOIN categories cat ON cat.i = d.category
"""


def fill_tips(
    app: Any, count: int = TIPS, reporter_phone: str = REPORTER_PHONE
) -> tuple[float, float]:
    """`count` tips on the application's database, committed; the seconds the INSERT took, and
    VACUUM ANALYZE after it."""
    from app.auth.models import User, phone_lookup
    from app.extensions import db

    with app.app_context():
        reporter = db.session.scalar(
            sa.select(User.id).where(User.phone_hmac == phone_lookup(reporter_phone))
        )
        raw = db.engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                started = time.perf_counter()
                sql = _FILL_SQL.replace(":count", str(int(count)))
                cursor.execute(sql.replace(":reporter", f"'{reporter}'::uuid"))
                raw.commit()
                inserted = time.perf_counter()
            raw.driver_connection.autocommit = True
            with raw.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE tips")
        finally:
            raw.close()
        db.engine.dispose()
    return inserted - started, time.perf_counter() - inserted
