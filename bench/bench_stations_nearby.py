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
    STATIONS,
    BenchConfig,
    Result,
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


def run(config: BenchConfig) -> list[Result]:
    requests = int(os.environ.get("BENCH_REQUESTS", 1000))
    bench_url = make_database(database_url())
    try:
        fill_stations(bench_url, STATIONS, BOX)
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
