"""Patrol coverage of one sub-district over 7 days among 10,000,000 check-ins: p50/p99, API vs SQL.

Runs on a throw-away database of the dev cluster's server (made and dropped here), migrated and
loaded with the demo data (Chaoyang's areas, the grid of three communities of 建外街道), then
filled with BENCH_CHECKINS check-ins (default 10,000,000) over the last 170 days, generated
set-based in SQL. The fill is patrols of 200 fixes, one every 30 s (plus up to 10 s of jitter),
each patrol in one community drawn uniformly among Chaoyang's, walking a route of 5 neighbouring
H3 resolution-9 cells of that community (40 fixes per cell). Routes come from a helper table made
in Python: the resolution-9 cells whose centres lie in each community's polygon
(`geo.cells.cells_covering`; the cell of the polygon's point on surface for a community too small
to hold a centre), their centres resolved to an area path by `app.areas.service.resolve_paths`
(so the grid cell is right), one route starting from each cell. A fix lies within about 50 m of
its cell's centre; every fix is plausible (flags 0), accuracy 8 m; a pool of about 20,000
volunteers, each with a home community. Patrols start in order over the 170 days, and each chunk
of about 1,000,000 rows is inserted in time order and committed, so the heap is laid out like
live ingest. VACUUM ANALYZE checkins after the fill. The draws are seeded: every run stores the
same rows, relative to the time it starts. The sub-district holds 8 of the 598 communities, so
about 1.3% of a 7-day window: some 5,500 check-ins of 10,000,000 (7,400 with the seed: 37
patrols); a fill much below 300,000 may leave it without any, and the benchmark stops saying so.

The caller is a community admin with the sub-district 建外街道 (110105001000) as jurisdiction. The
project side is `GET /api/v1/coverage/cells?area_id=<建外街道>&from=<now - 7 days>&to=...` under
gunicorn (1 worker), one client, sequential requests (latency, not throughput), in two scenarios:
`cells=hex&resolution=9`, and `cells=admin` (grid cells exist in only 3 of the sub-district's 8
communities, so fewer features come back; the window function still reads every fix of the
sub-district). `to` is now minus 0..3600 random seconds per request, so nothing can be cached.
The reference is what `coverage.cells` sends to PostgreSQL for the same request, captured from the
service itself (a `do_orm_execute` listener on the session while the service runs) and compiled
with literal values, through pgbench (one client, simple protocol, per-transaction latencies
logged); `to` is `to_timestamp(:to)` with a pgbench variable drawn the same way. For admin cells
that is the aggregate and the grid-cell outlines query; for hex cells the aggregate alone. The
API's extra work is HTTP, the token and its session, loading the user and its jurisdiction,
BEGIN/COMMIT, building the hexagons and serialising GeoJSON. No target: the issue asks for p50
and p99 only.

Environment: BENCH_CHECKINS (default 10,000,000 check-ins to store), BENCH_REQUESTS (default 200
measured requests per scenario and round, after 10 warm-up ones), BENCH_ROUNDS (rounds of both
sides, interleaved; p50/p99 per round, the median of the rounds is reported).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

from bench.common import (
    ROOT,
    BenchConfig,
    Result,
    bench_app,
    database_url,
    drop_database,
    geojson_latencies,
    gunicorn,
    make_database,
    migrate_and_load_demo,
    percentile,
    pgbench_latencies,
)

SUBDISTRICT_CODE = "110105001000"  # 建外街道
STAFF_PHONE = "17900000001"
WARM_UP = 10
DAYS = 170
FIXES_PER_PATROL = 200
FIX_SECONDS = 30
STEPS = 5  # cells on a patrol's route: FIXES_PER_PATROL / STEPS fixes in each
VOLUNTEERS = 20_000
CHUNK_PATROLS = 5_000  # 1,000,000 rows per committed chunk
JITTER_S = 3600  # `to` is now minus up to this many seconds
SEED = 0.42  # setseed() for the fill's random(): the same rows (relative to now) every run
WORKDIR = ROOT / "bench" / "results"

HELPER_SQL = """
CREATE TEMP TABLE bench_routes (
    community_no int, route_no int, step int, h3 bigint, lon float8, lat float8,
    district_id uuid, subdistrict_id uuid, community_id uuid, grid_cell_id uuid,
    PRIMARY KEY (community_no, route_no, step)
);
CREATE TEMP TABLE bench_communities (community_no int PRIMARY KEY, routes int);
"""

# One chunk of patrols {first}..{last}: their fixes, in time order. Formatted with numbers only.
FILL_SQL = """
WITH draws AS MATERIALIZED (
    SELECT n,
           floor(random() * {communities})::int AS community_no,
           random() AS route_draw,
           floor(random() * {per_community})::int AS volunteer_no,
           '{anchor}'::timestamptz - interval '{days} days'
               + (n + random()) * ((interval '{days} days' - interval '2 hours') / {patrols})
               AS started_at
    FROM generate_series({first}, {last}) AS n
), patrols AS MATERIALIZED (
    SELECT d.n, d.community_no, d.started_at,
           floor(d.route_draw * c.routes)::int AS route_no,
           md5('bench-patrol-' || d.n)::uuid AS patrol_id,
           md5('bench-volunteer-' || (d.community_no * {per_community} + d.volunteer_no))::uuid
               AS volunteer_id
    FROM draws d JOIN bench_communities c USING (community_no)
), fixes AS MATERIALIZED (
    SELECT p.patrol_id, p.volunteer_id, p.community_no, p.route_no, k / {per_step} AS step,
           p.started_at + k * interval '{fix_seconds} seconds' + random() * interval '10 seconds'
               AS recorded_at
    FROM patrols p CROSS JOIN generate_series(0, {fixes_per_patrol} - 1) AS k
    WHERE p.n * {fixes_per_patrol} + k < {total}
)
INSERT INTO checkins (patrol_id, client_id, recorded_at, received_at, volunteer_id, geom,
                      accuracy_m, flags, checkpoint_id, scan_method, district_id, subdistrict_id,
                      community_id, grid_cell_id, h3_r9)
SELECT f.patrol_id, gen_random_uuid(), f.recorded_at, f.recorded_at + interval '3 seconds',
       f.volunteer_id,
       ST_SetSRID(ST_MakePoint(r.lon + (random() - 0.5) * 0.0008,
                               r.lat + (random() - 0.5) * 0.0006), 4326),
       8, 0, NULL, NULL, r.district_id, r.subdistrict_id, r.community_id, r.grid_cell_id, r.h3
FROM fixes f
JOIN bench_routes r USING (community_no, route_no, step)
ORDER BY f.recorded_at
"""


# -- the fill ------------------------------------------------------------------------------------


def _routes(app) -> tuple[list[tuple], list[tuple[int, int]]]:
    """Helper rows: (community_no, route_no, step, h3, lon, lat, path ids...) and
    (community_no, routes) for every community of the demo areas."""
    import h3
    from shapely import wkb
    from sqlalchemy import text

    from app.areas.service import resolve_paths
    from app.extensions import db
    from geo.cells import cells_covering, from_bigint, to_bigint

    rng = random.Random(20261215)
    with app.app_context():
        communities = db.session.execute(
            text(
                "SELECT id, district_id, subdistrict_id, ST_AsBinary(geom), "
                "ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                "FROM areas WHERE level = 'community' ORDER BY code"
            )
        ).all()
        cells_of: list[list[int]] = []
        for _, _, _, geom, lon, lat in communities:
            cells = cells_covering(wkb.loads(bytes(geom)), 9)
            cells_of.append(cells or [to_bigint(h3.latlng_to_cell(lat, lon, 9))])
        centres = {}
        for cells in cells_of:
            for cell in cells:
                lat, lon = h3.cell_to_latlng(from_bigint(cell))
                centres[cell] = (lon, lat)
        ordered = sorted(centres)
        paths = {}
        for start in range(0, len(ordered), 10_000):
            batch = ordered[start : start + 10_000]
            for cell, path in zip(
                batch, resolve_paths(db.session, [centres[c] for c in batch]), strict=True
            ):
                paths[cell] = path
        db.session.remove()
    routes, counts = [], []
    for number, ((community_id, district_id, subdistrict_id, *_), cells) in enumerate(
        zip(communities, cells_of, strict=True)
    ):
        members = set(cells)
        for route_no, first in enumerate(cells):
            walk = [first]
            while len(walk) < STEPS:
                here = walk[-1]
                near = [
                    c
                    for c in (to_bigint(x) for x in h3.grid_disk(from_bigint(here), 1))
                    if c != here and c in members
                ]
                fresh = [c for c in near if c not in walk]
                walk.append(rng.choice(fresh or near or [here]))
            for step, cell in enumerate(walk):
                path = paths[cell]
                if path.community_id is None:  # outside every piece: the community's own path
                    ids = (district_id, subdistrict_id, community_id, None)
                else:
                    ids = (path.district_id, path.subdistrict_id, path.community_id)
                    ids += (path.grid_cell_id,)
                routes.append((number, route_no, step, cell, *centres[cell], *ids))
        counts.append((number, len(cells)))
    return routes, counts


def _fill(app, total: int) -> tuple[float, float, dt.datetime]:
    """`total` check-ins over the last DAYS days; seconds of the fill and of VACUUM ANALYZE, and
    the moment the fill counts back from."""
    from app.extensions import db

    started = time.perf_counter()
    routes, counts = _routes(app)
    patrols = -(-total // FIXES_PER_PATROL)
    anchor = dt.datetime.now(dt.UTC).replace(microsecond=0)
    print(
        f"   helper table: {len(routes):,} route steps over {len(counts)} communities "
        f"({time.perf_counter() - started:.1f} s); filling {total:,} check-ins "
        f"({patrols:,} patrols)",
        file=sys.stderr,
        flush=True,
    )
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                cursor.execute(HELPER_SQL)
                with cursor.copy("COPY bench_routes FROM STDIN") as copy:
                    for row in routes:
                        copy.write_row(row)
                with cursor.copy("COPY bench_communities FROM STDIN") as copy:
                    for row in counts:
                        copy.write_row(row)
                cursor.execute("ANALYZE bench_routes; ANALYZE bench_communities")
                cursor.execute(f"SELECT setseed({SEED})")
            raw.commit()
            for first in range(0, patrols, CHUNK_PATROLS):
                last = min(first + CHUNK_PATROLS, patrols) - 1
                sql = FILL_SQL.format(
                    communities=len(counts),
                    per_community=max(1, VOLUNTEERS // len(counts)),
                    anchor=anchor.isoformat(),
                    days=DAYS,
                    patrols=patrols,
                    first=first,
                    last=last,
                    per_step=FIXES_PER_PATROL // STEPS,
                    fix_seconds=FIX_SECONDS,
                    fixes_per_patrol=FIXES_PER_PATROL,
                    total=total,
                )
                with raw.cursor() as cursor:
                    cursor.execute(sql)
                raw.commit()
                done = min((last + 1) * FIXES_PER_PATROL, total)
                print(
                    f"   {done:,} / {total:,} check-ins ({time.perf_counter() - started:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
            filled = time.perf_counter()
            raw.driver_connection.autocommit = True
            with raw.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE checkins")
        finally:
            raw.close()
        db.engine.dispose()
    return filled - started, time.perf_counter() - filled, anchor


# -- the caller ----------------------------------------------------------------------------------


def _staff(app) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A community admin of the sub-district with a live session: user id, sub-district id and
    an access token."""
    from sqlalchemy import text

    from app.extensions import db
    from tests.support.people import add_staff, signed_in

    with app.app_context():
        conn = db.session.connection()
        subdistrict = conn.execute(
            text("SELECT id FROM areas WHERE code = :code AND level = 'subdistrict'"),
            {"code": SUBDISTRICT_CODE},
        ).scalar_one()
        user_id = add_staff(
            conn,
            phone=STAFF_PHONE,
            name="压测社区管理员",
            roles=["community_admin"],
            area_codes=[SUBDISTRICT_CODE],
        )
        token = signed_in(conn, app, user_id, expires=dt.timedelta(hours=6))
        db.session.commit()
    return user_id, subdistrict, token


def _rows_in_window(app, subdistrict: uuid.UUID, start: dt.datetime, end: dt.datetime) -> int:
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        count = db.session.execute(
            text(
                "SELECT count(*) FROM checkins WHERE subdistrict_id = :s "
                "AND recorded_at >= :start AND recorded_at < :end"
            ),
            {"s": subdistrict, "start": start, "end": end},
        ).scalar_one()
        db.session.remove()
    return count


# -- the reference -------------------------------------------------------------------------------


def _reference_script(app, user_id: uuid.UUID, query: dict, now: dt.datetime) -> str:
    """A pgbench script of the statements `coverage.cells` sends for `query` (to = now), captured
    from the service as it runs and compiled with literal values; `to` becomes a variable."""
    from sqlalchemy import event

    from app.auth.models import User
    from app.extensions import db
    from app.patrols import coverage
    from app.patrols.routes import _period
    from app.patrols.schemas import CellsArgsSchema

    with app.app_context():
        session = db.session()
        user = session.get(User, user_id)
        user.jurisdiction  # noqa: B018 - loaded now, as the API's token check loads it
        args = CellsArgsSchema().load({**query, "to": now.isoformat()})
        start, end = _period(args)
        captured = []

        def capture(state) -> None:
            captured.append(state.statement)

        event.listen(session, "do_orm_execute", capture)
        try:
            document = coverage.cells(
                session,
                user,
                args,
                start,
                end,
                max_gap_minutes=app.config["SERVICE_MAX_GAP_MINUTES"],
            )
        finally:
            event.remove(session, "do_orm_execute", capture)
        if not document["features"]:
            raise SystemExit(f"no cells for {query}: the fill does not fit the scenario")
        dialect = db.engine.dialect
        statements = [
            " ".join(
                str(s.compile(dialect=dialect, compile_kwargs={"literal_binds": True})).split()
            )
            for s in captured
        ]
        db.session.remove()
    aggregate = [s for s in statements if "lag(" in s]
    if len(aggregate) != 1:
        raise SystemExit(f"expected one aggregate among the service's statements: {statements}")
    literal = f"'{end.isoformat(sep=' ')}'"
    if aggregate[0].count(literal) != 1:
        raise SystemExit(f"`to` ({literal}) is not once in the aggregate: {aggregate[0]}")
    epoch = int(end.timestamp())
    body = "".join(s.replace(literal, "to_timestamp(:to_epoch)") + ";\n" for s in statements)
    return f"\\set to_epoch {epoch} - random(0, {JITTER_S})\n" + body


# -- the project ---------------------------------------------------------------------------------


# -- this benchmark ------------------------------------------------------------------------------


def _coverage_url(base: str, query: dict):
    def url_at(to: dt.datetime) -> str:
        return f"{base}/api/v1/coverage/cells?{urlencode({**query, 'to': to.isoformat()})}"

    return url_at


def run(config: BenchConfig) -> list[Result]:
    total = int(os.environ.get("BENCH_CHECKINS", 10_000_000))
    requests = int(os.environ.get("BENCH_REQUESTS", 200))
    bench_url = make_database(database_url())
    WORKDIR.mkdir(exist_ok=True)
    try:
        app = bench_app(bench_url)
        migrate_and_load_demo(app)
        fill_seconds, vacuum_seconds, _ = _fill(app, total)
        print(
            f"   filled {total:,} check-ins in {fill_seconds:.1f} s (helper table + "
            f"INSERT ... SELECT in chunks), VACUUM ANALYZE {vacuum_seconds:.1f} s",
            flush=True,
        )
        user_id, subdistrict, token = _staff(app)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        since = now - dt.timedelta(days=7)
        in_window = _rows_in_window(app, subdistrict, since, now)
        common = {"area_id": str(subdistrict), "from": since.isoformat()}
        scenarios = {
            "H3 resolution-9 cells": {**common, "cells": "hex", "resolution": 9},
            "admin grid cells": {**common, "cells": "admin"},
        }
        scripts = {}
        for number, (name, query) in enumerate(scenarios.items(), start=1):
            scripts[name] = WORKDIR / f"coverage-{number}.sql"
            scripts[name].write_text(_reference_script(app, user_id, query, now))
        with app.app_context():
            from app.extensions import db

            db.engine.dispose()
        project = {name: [] for name in scenarios}
        reference = {name: [] for name in scenarios}
        features = {name: [] for name in scenarios}
        os.environ["DATABASE_URL"] = bench_url
        try:
            with gunicorn(workers=1) as base:
                for round_no in range(config.rounds):
                    for name, query in scenarios.items():
                        latencies, fewest = geojson_latencies(
                            _coverage_url(base, query),
                            token,
                            now,
                            requests,
                            WARM_UP,
                            JITTER_S,
                            round_no,
                        )
                        project[name].append(latencies)
                        features[name].append(fewest)
                        reference[name].append(
                            pgbench_latencies(
                                scripts[name], bench_url, requests, "coverage", WARM_UP
                            )
                        )
        finally:
            del os.environ["DATABASE_URL"]
    finally:
        drop_database(bench_url)
    notes = {
        "requests per round": requests,
        "check-ins stored": f"{total:,}",
        "check-ins of the sub-district in the 7 days": f"{in_window:,}",
        "fill s": round(fill_seconds, 1),
        "VACUUM ANALYZE s": round(vacuum_seconds, 1),
    }
    results = []
    for name, query in scenarios.items():
        extra = {**notes, "features per answer (fewest)": features[name]}
        results += _results(name, query, project[name], reference[name], scripts[name], extra)
    return results


def _results(
    name: str,
    query: dict,
    project: list[list[float]],
    reference: list[list[float]],
    script: Path,
    notes: dict,
) -> list[Result]:
    requests = notes["requests per round"]
    shown = {k: v for k, v in query.items() if k not in ("area_id", "from")}
    command_p = (
        f"GET /api/v1/coverage/cells?area_id=<{SUBDISTRICT_CODE}>&from=<now - 7 days>&to=<now - "
        f"0..{JITTER_S} s>&{urlencode(shown)} (gunicorn, 1 worker, 1 sequential client, "
        f"{WARM_UP} warm-up requests left out)"
    )
    command_r = f"pgbench -n -c 1 -t {requests + WARM_UP} -f {script} --log"
    label = f"coverage of one sub-district, 7 days, {name}, among {notes['check-ins stored']}"
    return [
        Result(
            name=f"{label} check-ins: p{q} latency",
            unit="ms",
            project=[round(fn(r), 2) for r in project],
            reference=[round(fn(r), 2) for r in reference],
            project_command=command_p,
            reference_command=command_r,
            notes=notes,
            higher_is_better=False,
        )
        for q, fn in ((50, statistics.median), (99, lambda r: percentile(r, 0.99)))
    ]
