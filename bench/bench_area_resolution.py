"""Area resolution: 10,000 random points in Chaoyang, the service vs the same SQL through psql.

The project side is `app.areas.service.resolve_paths` as every write path calls it: Python
lists bound as arrays, one query, rows turned into AreaPath objects. The reference is that query
with the points inlined as array literals, run by psql (`\\timing`, output discarded), on the same
database. The issue's target: the service within 1.5x of the raw query.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import time

from sqlalchemy import text

from bench.common import ROOT, BenchConfig, Result, database_url, libpq_env, require_tool

POINTS = 10_000
TARGET = 1.5


def _points(session) -> list[tuple[float, float]]:
    rows = session.execute(
        text(
            """SELECT ST_X(d.geom), ST_Y(d.geom)
               FROM ST_Dump(ST_GeneratePoints(
                   (SELECT geom FROM areas WHERE code = '110105000000'), :n, 20261122)) AS d"""
        ),
        {"n": POINTS + 100},  # PostGIS may place a few fewer across a MultiPolygon's parts
    ).all()[:POINTS]
    if len(rows) != POINTS:
        raise SystemExit("the demo data is not loaded: run `make run` (or `flask demo load`) first")
    return [(float(x), float(y)) for x, y in rows]


def _psql_script(points: list[tuple[float, float]], rounds: int) -> str:
    from app.areas.service import RESOLVE_SQL

    lons = ",".join(repr(p[0]) for p in points)
    lats = ",".join(repr(p[1]) for p in points)
    query = (
        str(RESOLVE_SQL)
        .replace(":lons", f"ARRAY[{lons}]::float8[]")
        .replace(":lats", f"ARRAY[{lats}]::float8[]")
    )
    return "\\timing on\n\\o /dev/null\n" + (query.strip() + ";\n") * rounds


def run(config: BenchConfig) -> list[Result]:
    from app import create_app
    from app.areas.service import resolve_paths
    from app.extensions import db

    url = database_url()
    app = create_app()
    psql = require_tool("psql", "postgresql-client")
    rounds = max(config.rounds, 5)
    project: list[float] = []
    reference: list[float] = []
    with app.app_context():
        points = _points(db.session)
        resolve_paths(db.session, points)  # warm the caches on both sides alike
        script = ROOT / "bench" / "results" / "area-resolution.sql"
        script.parent.mkdir(exist_ok=True)
        script.write_text(_psql_script(points, 2))  # one warm-up run, one measured
        for _ in range(rounds):
            started = time.perf_counter()
            paths = resolve_paths(db.session, points)
            project.append(round((time.perf_counter() - started) * 1000, 1))
            assert len(paths) == POINTS
            output = subprocess.run(
                [psql, "-X", "-q", "-f", str(script)],
                check=True,
                capture_output=True,
                text=True,
                env=libpq_env(url),
            ).stdout
            times = [float(t) for t in re.findall(r"Time: ([\d.]+) ms", output)]
            reference.append(round(times[-1], 1))
        resolved = sum(1 for p in paths if p.community_id is not None)
    return [
        Result(
            name=f"resolve {POINTS} points to area paths: service vs raw SQL (psql)",
            unit="ms",
            project=project,
            reference=reference,
            project_command="app.areas.service.resolve_paths(session, points)",
            reference_command=f"psql -X -q -f {script}  (\\timing of the second run)",
            notes={
                "points resolved to a community": f"{resolved} of {POINTS}",
                "median per point, project": f"{statistics.median(project) * 1000 / POINTS:.1f} µs",
            },
            higher_is_better=False,
            target_ratio=TARGET,
        )
    ]
