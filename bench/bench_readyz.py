"""Framework overhead: GET /readyz under gunicorn vs `SELECT 1` through pgbench.

pgbench's `SELECT 1` is one round trip in autocommit; /readyz costs HTTP parsing, Flask,
flask-smorest, JSON, the access log line, and four round trips to PostgreSQL (the pool's pre-ping,
BEGIN, the alembic_version query, COMMIT). Both run against the same cluster with the same client
concurrency, interleaved round by round.
"""

from __future__ import annotations

import os

from bench.common import BenchConfig, Result, database_url, gunicorn, pgbench, wrk

QUERY = "SELECT 1;\n"


def run(config: BenchConfig) -> list[Result]:
    url = database_url()
    workers = int(os.environ.get("BENCH_WORKERS", os.cpu_count() or 2))
    project: list[float] = []
    reference: list[float] = []
    with gunicorn(workers) as base:
        for _ in range(config.rounds):
            rps, project_command = wrk(f"{base}/readyz", config.seconds, config.connections)
            tps, reference_command = pgbench(QUERY, url, config.seconds, config.connections)
            project.append(round(rps, 1))
            reference.append(round(tps, 1))
    return [
        Result(
            name="GET /readyz (gunicorn) vs SELECT 1 (pgbench)",
            unit="req/s",
            project=project,
            reference=reference,
            project_command=f"gunicorn --workers {workers} wsgi:app; {project_command}",
            reference_command=reference_command,
            notes={"connections": config.connections, "seconds per round": config.seconds},
        )
    ]
