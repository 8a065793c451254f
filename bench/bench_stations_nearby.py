"""Nearest open stations: 10 nearest open ones with an amenity among 100,000, API vs raw SQL.

Runs on a throw-away database of the dev cluster's server (made and dropped here), filled with
100,000 stations spread over Chaoyang's bounding box, 70% open now, a third with `charging`.
The project side is `GET /api/v1/stations/nearby` under gunicorn (one client, sequential
requests: latency, not throughput); the reference is the same nearest-first query through
pgbench (one client, per-transaction latencies logged). Both use random points in the same box.
The issue's target: the API within 3x of the raw query (framework overhead included).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from urllib.request import urlopen

from bench.common import (
    ROOT,
    BenchConfig,
    Result,
    database_url,
    drop_database,
    gunicorn,
    make_database,
    percentile,
    pgbench_latencies,
)

STATIONS = 100_000
BOX = (116.35, 39.81, 116.64, 40.10)
TARGET = 3.0

FILL_SQL = """
INSERT INTO stations (id, type, name, geom, amenities, opening_hours, hours_exceptions,
                      status, visit_code, generated)
SELECT gen_random_uuid(),
       (ARRAY['rider_station', 'volunteer_post', 'community_service_centre'])[1 + n % 3],
       'bench station ' || n,
       ST_SetSRID(ST_MakePoint(:w + random() * (:e - :w), :s + random() * (:n - :s)), 4326),
       CASE WHEN n % 3 = 0 THEN ARRAY['charging', 'hot_water'] ELSE ARRAY['wifi'] END,
       '{}'::jsonb, '[]'::jsonb, 'active', md5(n::text), true
FROM generate_series(1, :count) AS n;
INSERT INTO station_open_periods (station_id, during)
SELECT id, tstzrange(now() - interval '1 day', now() + interval '1 day')
FROM stations WHERE random() < 0.7;
ANALYZE stations; ANALYZE station_open_periods;
"""

# The query the service builds (app/stations/service.py, nearby), as pgbench runs it.
PGBENCH_SCRIPT = """\\set lon 116.35 + random(0, 290000) / 1000000.0
\\set lat 39.81 + random(0, 290000) / 1000000.0
SELECT s.id, s.name, ST_Distance(s.geog, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography),
       EXISTS (SELECT 1 FROM station_open_periods p WHERE p.station_id = s.id AND p.during @> now())
FROM stations s
WHERE s.status = 'active'
  AND ST_DWithin(s.geog, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, 3000)
  AND s.amenities @> ARRAY['charging']::varchar[]
  AND EXISTS (SELECT 1 FROM station_open_periods p WHERE p.station_id = s.id AND p.during @> now())
ORDER BY s.geog <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography
LIMIT 10;
"""


def _fill(bench_url: str) -> None:
    import flask_migrate

    from app import create_app
    from app.config import Config
    from app.core.schema_version import MIGRATIONS_DIR
    from app.extensions import db

    app = create_app(Config.from_env(SQLALCHEMY_DATABASE_URI=bench_url))
    with app.app_context():
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
        raw = db.engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                west, south, east, north = BOX
                cursor.execute(
                    FILL_SQL.replace(":w", str(west))
                    .replace(":e", str(east))
                    .replace(":s", str(south))
                    .replace(":n", str(north))
                    .replace(":count", str(STATIONS))
                )
            raw.commit()
        finally:
            raw.close()
        db.engine.dispose()


def run(config: BenchConfig) -> list[Result]:
    requests = int(os.environ.get("BENCH_REQUESTS", 1000))
    bench_url = make_database(database_url())
    try:
        _fill(bench_url)
        rng = random.Random(42)
        project: list[float] = []
        script = ROOT / "bench" / "results" / "stations-nearby.sql"
        script.parent.mkdir(exist_ok=True)
        script.write_text(PGBENCH_SCRIPT)
        os.environ["DATABASE_URL"] = bench_url
        try:
            with gunicorn(workers=1) as base:
                for i in range(requests + 50):
                    lon = rng.uniform(BOX[0], BOX[2])
                    lat = rng.uniform(BOX[1], BOX[3])
                    url = (
                        f"{base}/api/v1/stations/nearby?lon={lon}&lat={lat}"
                        "&amenity=charging&open_now=true&limit=10"
                    )
                    started = time.perf_counter()
                    with urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
                        response.read()
                    if i >= 50:  # the first ones warm the caches
                        project.append((time.perf_counter() - started) * 1000)
        finally:
            del os.environ["DATABASE_URL"]
        reference = pgbench_latencies(script, bench_url, requests + 50, "stations")[50:]
    finally:
        drop_database(bench_url)
    p50 = Result(
        name=f"10 nearest open stations with an amenity, among {STATIONS:,}: p50 latency",
        unit="ms",
        project=[round(statistics.median(project), 2)],
        reference=[round(statistics.median(reference), 2)],
        project_command="GET /api/v1/stations/nearby?...&amenity=charging&open_now=true&limit=10"
        " (gunicorn, 1 worker, 1 sequential client)",
        reference_command=f"pgbench -n -c 1 -t {requests + 50} -f {script} --log",
        notes={"requests": requests},
        higher_is_better=False,
        target_ratio=TARGET,
    )
    p99 = Result(
        name=f"10 nearest open stations with an amenity, among {STATIONS:,}: p99 latency",
        unit="ms",
        project=[round(percentile(project, 0.99), 2)],
        reference=[round(percentile(reference, 0.99), 2)],
        project_command=p50.project_command,
        reference_command=p50.reference_command,
        notes={"requests": requests},
        higher_is_better=False,
    )
    return [p50, p99]
