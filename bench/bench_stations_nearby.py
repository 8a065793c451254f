"""Nearest open stations: 10 nearest open ones with an amenity among 100,000, API vs raw SQL.

Runs on a throw-away database of the dev cluster's server (made and dropped here), filled with
100,000 stations spread over Chaoyang's bounding box, 70% open now, a third with `charging`.
The project side is `GET /api/v1/stations/nearby` under gunicorn (one client, sequential
requests: latency, not throughput). The reference is exactly the SQL the service sends for the
same request (captured in process for each of 100 random points, values rendered by psycopg),
through pgbench (one client, one of the points' scripts per transaction, per-transaction latencies
logged). Both sides use the same points.
The issue's target: the API within 3x of the raw query (framework overhead included).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from urllib.request import urlopen

import sqlalchemy as sa

from bench.common import (
    ROOT,
    STATIONS,
    BenchConfig,
    Result,
    bench_app,
    database_url,
    drop_database,
    fill_stations,
    gunicorn,
    make_database,
    percentile,
    pgbench_latencies,
)
from bench.common import (
    STATIONS_BOX as BOX,
)

TARGET = 3.0
RESULTS = ROOT / "bench" / "results"

POINTS = 100  # pgbench takes at most 128 scripts
RADIUS_M = 3000  # NearbyArgsSchema's default
QUERY = "amenity=charging&open_now=true&limit=10"


def _captured_sql(bench_url: str, points: list[tuple[float, float]]) -> list[str]:
    """For each point, the statements `service.nearby` sends for the API's request (its fast
    scan, and the bounded query when it falls back), values in place as psycopg renders them:
    the reference runs exactly the project's SQL."""
    import psycopg

    from app.extensions import db
    from app.stations import service

    app = bench_app(bench_url)
    scripts = []
    with app.app_context():
        captured: list[tuple[str, dict]] = []

        def capture(_conn, _cursor, statement, parameters, _context, _many):
            captured.append((statement, parameters))

        sa.event.listen(db.engine, "before_cursor_execute", capture)
        try:
            for lon, lat in points:
                captured.clear()
                service.nearby(
                    db.session,
                    lon,
                    lat,
                    radius_m=RADIUS_M,
                    limit=10,
                    amenities=["charging"],
                    open_now=True,
                )
                raw = db.session.connection().connection.driver_connection
                cursor = psycopg.ClientCursor(raw)
                scripts.append(
                    "".join(cursor.mogrify(sql, params) + ";\n" for sql, params in captured)
                )
                db.session.rollback()
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", capture)
        db.engine.dispose()
    return scripts


def run(config: BenchConfig) -> list[Result]:
    requests = int(os.environ.get("BENCH_REQUESTS", 1000))
    bench_url = make_database(database_url())
    try:
        fill_stations(bench_url, STATIONS, BOX)
        rng = random.Random(42)
        points = [(rng.uniform(BOX[0], BOX[2]), rng.uniform(BOX[1], BOX[3])) for _ in range(POINTS)]
        scripts = []
        for index, sql in enumerate(_captured_sql(bench_url, points)):
            script = RESULTS / f"stations-nearby-{index:03d}.sql"
            script.write_text(sql)
            scripts.append(script)
        project: list[float] = []
        os.environ["DATABASE_URL"] = bench_url
        try:
            with gunicorn(workers=1) as base:
                for i in range(requests + 50):
                    lon, lat = points[i % POINTS]
                    url = f"{base}/api/v1/stations/nearby?lon={lon}&lat={lat}&{QUERY}"
                    started = time.perf_counter()
                    with urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
                        response.read()
                    if i >= 50:  # the first ones warm the caches
                        project.append((time.perf_counter() - started) * 1000)
        finally:
            del os.environ["DATABASE_URL"]
        reference = pgbench_latencies(scripts, bench_url, requests + 50, "stations")[50:]
    finally:
        drop_database(bench_url)
    p50 = Result(
        name=f"10 nearest open stations with an amenity, among {STATIONS:,}: p50 latency",
        unit="ms",
        project=[round(statistics.median(project), 2)],
        reference=[round(statistics.median(reference), 2)],
        project_command=f"GET /api/v1/stations/nearby?lon=&lat=&{QUERY} over {POINTS} points"
        " (gunicorn, 1 worker, 1 sequential client)",
        reference_command=f"pgbench -n -c 1 -t {requests + 50} --log -f "
        f"{RESULTS}/stations-nearby-<000..{POINTS - 1:03d}>.sql (the statements the service "
        "sent for each point, captured and rendered by psycopg; one picked per transaction)",
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
