"""Tips per H3 cell among 1,000,000 tips, 30 days, one sub-district and the district: API vs SQL.

Runs on a throw-away database of the dev cluster's server (made and dropped here), migrated and
loaded with the demo data (Chaoyang's areas and accounts), then filled with the 1,000,000 tips
of tests/support/tips.py (`fill_tips`, the tips of bench_tips_list: created over the last 365
days, spread evenly over Chaoyang's 598 communities, a point within about 200 m of each
community's centre, 10 categories, statuses by age). That fill leaves the cells empty, so this
benchmark adds them: the tips' points are read through a server-side cursor, their H3 cells
(resolutions 7, 8, 9, as signed bigints) computed in Python by `geo.cells.h3_cells` (what the
API stores at write time), COPYed into a temp table, where the tips of the three communities
with demo grid cells also get the grid cell of their community holding the point (area_pieces,
lowest code on a shared edge); one UPDATE ... FROM writes them into `tips`. The secondary
indexes of `tips` are dropped for that UPDATE and built again after it (their definitions read
back from pg_index), and the table is then CLUSTERed on `ix_tips_created` and VACUUM ANALYZEd: a
table rewritten by an UPDATE of every row would be twice its size with dead space, while live
tips are written once, in time order, with their cells; the rewrite gives that layout (a window
of days is a contiguous run of pages, as in production, not rows scattered over the whole table
as FILL_SQL inserts them). Every step's seconds go to stderr and the total to the notes.

The project side is `GET /api/v1/grid/tips?cells=hex&resolution=8&from=<to - 30 days>&to=...`
under gunicorn (1 worker), one client, sequential requests (latency, not throughput), `to` being
now minus 0..3600 random seconds per request so nothing can be cached, in two scenarios:
  - sub-district: `area_id=<建外街道, 110105001000>` as the demo community admin (13800000002,
    jurisdiction that sub-district): 8 communities, about 2,200 tips read (the 30 days and the
    30 days before, for the change), 11 cells;
  - district: no `area_id`, as the demo admin (13800000001, everywhere: the whole district),
    about 164,000 tips read, some 750 cells.
Each answer must be 200 with at least one feature.

The reference is the best raw SQL for the same answer over the same data, through pgbench (one
client, simple protocol, per-transaction latencies logged), `to` drawn the same way with a
pgbench `\\set` (`to_timestamp(:to_epoch)`, the window's start and the previous window's start
counted back from it). Two candidates are measured in every round, interleaved with the API:
  - "service": the aggregate `app.grid.service.tip_cells` sends, captured from the service as it
    runs (a `do_orm_execute` listener on the session) and compiled with literal values: as of
    f60a4f9, GROUPING SETS ((cell, category), (cell, status)) in a subquery and one row per
    cell on top, both breakdowns as jsonb_object_agg;
  - "per cell": a hand-written GROUP BY cell alone, with the same WHERE clause (built from the
    service's own `_conditions`) and one `count(*) FILTER` per category (the codes of
    tip_categories) and per status, so one row per cell carries the whole answer (total,
    previous, by category, by status, first, last; open is the sum of the open statuses). Its
    answer is checked against the service's before the run.
The reference of each scenario is the candidate with the lower median p50 over the rounds (the
notes say which, with the other one's figures). In our runs that is "per cell": for the district
about half of "service" (90-100 against 175-205 ms: one hash aggregate of 750 groups that the
planner also runs in parallel, where the service's spills the outer jsonb aggregate to disk
after hashing 12,000 (cell, category) and (cell, status) groups; 130 ms without parallel
workers), for the sub-district within noise of it (about 3 ms each). Also tried and left out:
the service's former GROUP BY cell, category, status (35,000 rows for the district, 150-185 ms),
GROUP BY cell without the split (faster, but not the same answer), and an index-only plan (it
needs a covering index the schema does not have; (created_at) INCLUDE (the cells, category,
status) saved about 15 of 70 ms for the district). The API's extra work is HTTP, the token and
its session, loading the user and its jurisdiction, BEGIN/COMMIT, its prepared statements'
plans (psycopg prepares a statement after 5 runs; PostgreSQL may then keep a generic plan),
fetching the rows, building the hexagons and serialising GeoJSON. Target (the issue's): the
API's p50 within 1.5x of the raw SQL's.

Environment: BENCH_REQUESTS (default 200 measured requests per scenario and round, after 10
warm-up ones, the same count of pgbench transactions per candidate), BENCH_ROUNDS (rounds of both
sides, interleaved; p50/p99 per round, the median of the rounds is reported). BENCH_TIPS (default
1,000,000) tips are stored, as in bench_tips_list.
"""

from __future__ import annotations

import datetime as dt
import os
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
from tests.support.people import login
from tests.support.tips import TIPS, fill_tips

SUBDISTRICT_CODE = "110105001000"  # 建外街道
STAFF_PHONE = "13800000002"  # the demo community admin, jurisdiction 建外街道
ADMIN_PHONE = "13800000001"  # the demo admin, everywhere
TARGET = 1.5
WARM_UP = 10
WINDOW = dt.timedelta(days=30)
JITTER_S = 3600  # `to` is now minus up to this many seconds
RESOLUTION = 8
CHUNK = 50_000  # rows per server-side cursor fetch and COPY
WORKDIR = ROOT / "bench" / "results"

CELLS_TABLE_SQL = """
CREATE TEMP TABLE bench_cells (
    id uuid, h3_r7 bigint, h3_r8 bigint, h3_r9 bigint, grid_cell_id uuid
) ON COMMIT DROP
"""

# Tips of the communities with grid cells: the grid cell of their own community holding the
# point (the lowest code on a shared edge, as app.areas.service resolves a point).
GRID_SQL = """
UPDATE bench_cells c SET grid_cell_id = g.grid_cell_id
FROM (
    SELECT DISTINCT ON (t.id) t.id, a.id AS grid_cell_id
    FROM areas a
    JOIN area_pieces pc ON pc.area_id = a.id
    JOIN tips t ON t.community_id = a.community_id AND ST_Intersects(pc.geom, t.geom)
    WHERE a.level = 'grid_cell'
    ORDER BY t.id, a.code
) g
WHERE c.id = g.id
"""

UPDATE_SQL = """
UPDATE tips t
SET h3_r7 = c.h3_r7, h3_r8 = c.h3_r8, h3_r9 = c.h3_r9, grid_cell_id = c.grid_cell_id
FROM bench_cells c
WHERE t.id = c.id
"""

# Indexes of `tips` that back no constraint: dropped for the UPDATE, built again after it.
SECONDARY_INDEXES_SQL = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid = 'tips'::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY 1
"""
CLUSTER_INDEX = "ix_tips_created"


# -- the fill ------------------------------------------------------------------------------------


def _log(line: str) -> None:
    print(f"   {line}", file=sys.stderr, flush=True)


def _fill_cells(app) -> dict[str, float]:
    """The H3 cells (7, 8, 9) of every tip, by geo.cells.h3_cells, and the grid cell of those
    inside one; then the table rewritten in time order. Seconds per step."""
    from app.extensions import db
    from geo.cells import h3_cells

    times = {}
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            conn = raw.driver_connection
            step = time.perf_counter()
            with conn.cursor() as cursor:
                cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")  # CLUSTER, CREATE INDEX
                cursor.execute(CELLS_TABLE_SQL)
                copy_sql = "COPY bench_cells (id, h3_r7, h3_r8, h3_r9) FROM STDIN"
                # Closed before the DDL below: an open portal on `tips` forbids CREATE INDEX.
                with conn.cursor(name="bench_points") as points:
                    points.execute("SELECT id, ST_X(geom), ST_Y(geom) FROM tips")
                    while rows := points.fetchmany(CHUNK):
                        with cursor.copy(copy_sql) as copy:
                            for tip_id, lon, lat in rows:
                                c = h3_cells(lon, lat)
                                copy.write_row((tip_id, c["h3_r7"], c["h3_r8"], c["h3_r9"]))
                times["H3 cells in Python + COPY"] = time.perf_counter() - step
                step = time.perf_counter()
                cursor.execute("ANALYZE bench_cells")
                cursor.execute(GRID_SQL)
                times["grid cells (UPDATE of the temp table)"] = time.perf_counter() - step
                step = time.perf_counter()
                cursor.execute(SECONDARY_INDEXES_SQL)
                indexes = dict(cursor.fetchall())
                for name in indexes:
                    cursor.execute(f"DROP INDEX {name}")  # regclass text: quoted as needed
                cursor.execute(UPDATE_SQL)
                times[f"UPDATE tips (without its {len(indexes)} secondary indexes)"] = (
                    time.perf_counter() - step
                )
                step = time.perf_counter()
                cursor.execute(indexes.pop(CLUSTER_INDEX))
                cursor.execute(f"CLUSTER tips USING {CLUSTER_INDEX}")
                times[f"CLUSTER tips USING {CLUSTER_INDEX}"] = time.perf_counter() - step
                step = time.perf_counter()
                for definition in indexes.values():
                    cursor.execute(definition)
                times["secondary indexes built again"] = time.perf_counter() - step
            conn.commit()
            step = time.perf_counter()
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE tips")
            times["VACUUM ANALYZE tips"] = time.perf_counter() - step
        finally:
            raw.close()
        db.engine.dispose()
    return times


def _fill(app) -> float:
    """The tips of tests/support/tips.py, then their cells; the seconds of it all."""
    insert_s, vacuum_s = fill_tips(app)
    _log(f"INSERT of {TIPS:,} tips (tests.support.tips.fill_tips): {insert_s:.1f} s")
    _log(f"VACUUM ANALYZE tips after it: {vacuum_s:.1f} s")
    total = insert_s + vacuum_s
    for name, seconds in _fill_cells(app).items():
        _log(f"{name}: {seconds:.1f} s")
        total += seconds
    _log(f"fill total: {total:.1f} s")
    return total


# -- the callers and the data --------------------------------------------------------------------


def _subdistrict(app) -> uuid.UUID:
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        area_id = db.session.execute(
            text("SELECT id FROM areas WHERE code = :code AND level = 'subdistrict'"),
            {"code": SUBDISTRICT_CODE},
        ).scalar_one()
        db.session.remove()
    return area_id


def _tips_in_window(app, area_id: uuid.UUID | None, end: dt.datetime) -> tuple[int, int]:
    """Tips (not merged, with a cell at RESOLUTION 8) of the window and of the two windows the
    aggregate reads, inside the sub-district `area_id` or everywhere."""
    from sqlalchemy import text

    from app.extensions import db

    sql = (
        "SELECT count(*) FILTER (WHERE created_at >= :start), count(*) FROM tips "
        "WHERE created_at >= :previous AND created_at < :end AND status <> 'merged' "
        "AND h3_r8 IS NOT NULL AND (CAST(:area AS uuid) IS NULL OR subdistrict_id = :area)"
    )
    with app.app_context():
        window, read = db.session.execute(
            text(sql),
            {"area": area_id, "start": end - WINDOW, "previous": end - 2 * WINDOW, "end": end},
        ).one()
        db.session.remove()
    return window, read


# -- the reference -------------------------------------------------------------------------------


def _per_cell_statement(session, user, args: dict, start: dt.datetime, end: dt.datetime):
    """GROUP BY cell alone, the same WHERE as the service's, one FILTERed count per category and
    per status; and the (label, kind, code) of those counts."""
    from sqlalchemy import func, literal_column, select, text

    from app.grid import service
    from app.patrols import coverage
    from app.tips.models import STATUSES, Tip

    jurisdiction, area = coverage.scope(session, user, args.get("area_id"))
    cell = service.tip_cell(args["cells"], args["resolution"]).label("cell")
    current = Tip.created_at >= start
    categories = list(session.scalars(text("SELECT code FROM tip_categories ORDER BY code")))
    splits = [(f"category_{i}", "by_category", c) for i, c in enumerate(categories)]
    splits += [(f"status_{i}", "by_status", s) for i, s in enumerate(STATUSES) if s != "merged"]
    column_of = {"by_category": Tip.category_code, "by_status": Tip.status}
    statement = (
        select(
            cell,
            func.count().filter(current).label("now"),
            func.count().filter(~current).label("before"),
            func.min(Tip.created_at).filter(current).label("first"),
            func.max(Tip.created_at).filter(current).label("last"),
            *(
                func.count().filter(current, column_of[kind] == code).label(label)
                for label, kind, code in splits
            ),
        )
        .where(Tip.created_at >= start - (end - start), Tip.created_at < end, cell.is_not(None))
        .where(*service._conditions(jurisdiction, area, args))
        .group_by(literal_column("cell"))
    )
    return statement, splits


def _per_cell_answer(rows, splits) -> dict:
    """The per-cell statement's rows as the service's answer (the fields compared)."""
    from app.tips.models import OPEN_STATUSES

    answer = {}
    for row in rows:
        entry = {"total": row.now, "previous": row.before, "by_category": {}, "by_status": {}}
        for label, kind, code in splits:
            if count := getattr(row, label):
                entry[kind][code] = count
        entry["open"] = sum(entry["by_status"].get(s, 0) for s in OPEN_STATUSES)
        entry["first_at"] = row.first.isoformat() if row.first else None
        entry["last_at"] = row.last.isoformat() if row.last else None
        answer[row.cell] = entry
    return answer


def _service_answer(cells: list[dict]) -> dict:
    keep = ("total", "by_category", "by_status", "open", "first_at", "last_at")
    return {
        c["cell"]: {"previous": c["change"]["previous"], **{k: c[k] for k in keep}} for c in cells
    }


def _scripts(app, phone: str, query: dict, now: dt.datetime) -> tuple[dict[str, str], int]:
    """pgbench scripts of both candidates for `query` (to = now, from = now - 30 days), with
    `to` a variable; and the cells in the service's answer. The service's statement is captured
    from the service as it runs; the per-cell one must give the same answer."""
    from sqlalchemy import event, select

    from app.auth.models import User, phone_lookup
    from app.extensions import db
    from app.grid import service
    from app.grid.routes import _period
    from app.grid.schemas import GridTipsArgsSchema

    with app.app_context():
        session = db.session()
        user = session.scalar(select(User).where(User.phone_hmac == phone_lookup(phone)))
        user.jurisdiction  # noqa: B018 - loaded now, as the API's token check loads it
        args = GridTipsArgsSchema().load(
            {**query, "from": (now - WINDOW).isoformat(), "to": now.isoformat()}
        )
        start, end = _period(args, 30)
        captured = []

        def capture(state) -> None:
            captured.append(state.statement)

        event.listen(session, "do_orm_execute", capture)
        try:
            cells = service.tip_cells(session, user, args, start, end)
        finally:
            event.remove(session, "do_orm_execute", capture)
        if not cells:
            raise SystemExit(f"no cells for {query}: the fill does not fit the scenario")
        aggregates = [s for s in captured if "GROUP BY" in str(s)]
        if len(aggregates) != 1:
            raise SystemExit(f"expected one aggregate among the service's statements: {captured}")
        per_cell, splits = _per_cell_statement(session, user, args, start, end)
        mine = _per_cell_answer(session.execute(per_cell).all(), splits)
        if mine != _service_answer(cells):
            raise SystemExit(f"the per-cell statement does not give the service's answer: {query}")
        dialect = db.engine.dialect
        compiled = {
            name: " ".join(
                str(s.compile(dialect=dialect, compile_kwargs={"literal_binds": True})).split()
            )
            for name, s in (("service", aggregates[0]), ("per cell", per_cell))
        }
        db.session.remove()
    epoch = int(end.timestamp())
    scripts = {}
    for name, sql in compiled.items():
        for moment, back, once in (
            (end, 0, True),
            (start, WINDOW, False),
            (start - WINDOW, 2 * WINDOW, True),
        ):
            literal = f"'{moment.isoformat(sep=' ')}'"
            found = sql.count(literal)
            if not found or (once and found != 1):
                raise SystemExit(f"{literal} is {found} times in the {name} statement: {sql}")
            seconds = int(back.total_seconds()) if back else 0
            offset = f" - {seconds}" if seconds else ""
            sql = sql.replace(literal, f"to_timestamp(:to_epoch{offset})")
        scripts[name] = f"\\set to_epoch {epoch} - random(0, {JITTER_S})\n{sql};\n"
    return scripts, len(cells)


# -- the project ---------------------------------------------------------------------------------


# -- this benchmark ------------------------------------------------------------------------------


def _grid_url(base: str, query: dict):
    def url_at(to: dt.datetime) -> str:
        window = {"from": (to - WINDOW).isoformat(), "to": to.isoformat()}
        return f"{base}/api/v1/grid/tips?{urlencode({**query, **window})}"

    return url_at


def run(config: BenchConfig) -> list[Result]:
    requests = int(os.environ.get("BENCH_REQUESTS", 200))
    bench_url = make_database(database_url())
    WORKDIR.mkdir(exist_ok=True)
    try:
        app = bench_app(bench_url)
        migrate_and_load_demo(app)
        fill_seconds = _fill(app)
        print(f"   filled {TIPS:,} tips with their cells in {fill_seconds:.1f} s", flush=True)
        subdistrict = _subdistrict(app)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        hex_cells = {"cells": "hex", "resolution": RESOLUTION}
        scenarios = {
            "sub-district 建外街道 as its community admin": (
                STAFF_PHONE,
                {**hex_cells, "area_id": str(subdistrict)},
                subdistrict,
            ),
            "whole district as the admin": (ADMIN_PHONE, hex_cells, None),
        }
        scripts: dict[str, dict[str, Path]] = {}
        notes: dict[str, dict] = {}
        for number, (name, (phone, query, area_id)) in enumerate(scenarios.items(), start=1):
            texts, cells = _scripts(app, phone, query, now)
            scripts[name] = {}
            for index, (candidate, script) in enumerate(texts.items(), start=1):
                path = WORKDIR / f"grid-{number}-{index}.sql"
                path.write_text(script)
                scripts[name][candidate] = path
            window, read = _tips_in_window(app, area_id, now)
            notes[name] = {
                "tips in the 30 days": f"{window:,}",
                "tips read (the 30 days and the 30 before)": f"{read:,}",
                "cells in the answer (setup)": cells,
            }
        with app.app_context():
            from app.extensions import db

            db.engine.dispose()
        project = {name: [] for name in scenarios}
        reference = {name: {c: [] for c in scripts[name]} for name in scenarios}
        features = {name: [] for name in scenarios}
        os.environ["DATABASE_URL"] = bench_url
        try:
            with gunicorn(workers=1) as base:
                tokens = {phone: login(base, phone) for phone in (STAFF_PHONE, ADMIN_PHONE)}
                for round_no in range(config.rounds):
                    for name, (phone, query, _) in scenarios.items():
                        latencies, fewest = geojson_latencies(
                            _grid_url(base, query),
                            tokens[phone],
                            now,
                            requests,
                            WARM_UP,
                            JITTER_S,
                            round_no,
                        )
                        project[name].append(latencies)
                        features[name].append(fewest)
                        for candidate, path in scripts[name].items():
                            reference[name][candidate].append(
                                pgbench_latencies(path, bench_url, requests, "grid", WARM_UP)
                            )
        finally:
            del os.environ["DATABASE_URL"]
    finally:
        drop_database(bench_url)
    common = {
        "requests per round": requests,
        "tips stored": f"{TIPS:,}",
        "fill s": round(fill_seconds, 1),
    }
    results = []
    for name, (_, query, _) in scenarios.items():
        extra = {**common, **notes[name], "features per answer (fewest)": features[name]}
        results += _results(name, query, project[name], reference[name], scripts[name], extra)
    return results


def _results(
    name: str,
    query: dict,
    project: list[list[float]],
    candidates: dict[str, list[list[float]]],
    scripts: dict[str, Path],
    notes: dict,
) -> list[Result]:
    requests = notes["requests per round"]
    p50s = {c: [statistics.median(r) for r in rounds] for c, rounds in candidates.items()}
    best = min(p50s, key=lambda c: statistics.median(p50s[c]))
    reference = candidates[best]
    others = {
        f"reference candidate {c!r} p50 / p99 per round": (
            [round(v, 2) for v in p50s[c]],
            [round(percentile(r, 0.99), 2) for r in candidates[c]],
        )
        for c in candidates
        if c != best
    }
    shown = {k: v for k, v in query.items() if k != "area_id"}
    area = f"area_id=<{SUBDISTRICT_CODE}>&" if "area_id" in query else ""
    command_p = (
        f"GET /api/v1/grid/tips?{area}{urlencode(shown)}&from=<to - 30 days>&to=<now - "
        f"0..{JITTER_S} s> (gunicorn, 1 worker, 1 sequential client, {WARM_UP} warm-up "
        "requests left out)"
    )
    command_r = (
        f"pgbench -n -c 1 -t {requests + WARM_UP} -f {scripts[best]} --log "
        f"(the {best!r} statement; {WARM_UP} warm-up transactions left out)"
    )
    p50 = list(zip([statistics.median(r) for r in project], p50s[best], strict=True))
    label = f"tips per H3 r{RESOLUTION} cell among {notes['tips stored']}, 30 days, {name}"
    return [
        Result(
            name=f"{label}: p50 latency",
            unit="ms",
            project=[round(p, 2) for p, _ in p50],
            reference=[round(r, 2) for _, r in p50],
            project_command=command_p,
            reference_command=command_r,
            notes={
                **notes,
                "reference": best,
                "ratio per round": [round(p / r, 2) for p, r in p50],
                **others,
            },
            higher_is_better=False,
            target_ratio=TARGET,
        ),
        Result(
            name=f"{label}: p99 latency",
            unit="ms",
            project=[round(percentile(r, 0.99), 2) for r in project],
            reference=[round(percentile(r, 0.99), 2) for r in reference],
            project_command=command_p,
            reference_command=command_r,
            notes={**notes, "reference": best},
            higher_is_better=False,
        ),
    ]
