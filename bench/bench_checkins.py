"""Check-in ingest: rows/s through the HTTP API vs pgbench inserting the same rows straight in.

Runs on a throw-away database of the dev cluster's server (made and dropped here), migrated and
loaded with the demo data (every fix is resolved to its area path against Chaoyang's areas).
BENCH_PATROLS volunteers (default 256) each have a patrol under way, started 170 days ago so
that their clocks can run forward through the rounds without reaching the present.

Two scenarios, each interleaved round by round with its reference:
- batches: `POST /api/v1/patrols/{id}/checkins` with 50 items under gunicorn, BENCH_CONNECTIONS
  wrk connections (a Lua script builds each body: fresh client UUIDs, a walk of about 10 m per
  second from where that patrol last was, timestamps moving forward; every item is accepted),
  against pgbench running `INSERT ... SELECT` of 50 rows of the same shape into the same table
  (same indexes, same partitions) with as many clients. Target: the API at least 25% of raw.
- single: the same with one check-in per request, against pgbench's one-row inserts; p50 and
  p99 latency (wrk --latency; pgbench's per-transaction log) beside the rates. Target 15%.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import subprocess
import uuid

from bench.common import (
    ROOT,
    BenchConfig,
    Result,
    bench_app,
    database_url,
    drop_database,
    gunicorn,
    libpq_env,
    make_database,
    migrate_and_load_demo,
    percentile,
    require_tool,
    wrk_latency,
)

BOX = (116.40, 39.88, 116.55, 39.98)  # west, south, east, north: inside Chaoyang
BATCH = 50
RESULTS = ROOT / "bench" / "results"

# pgbench: the rows a batch inserts, generated in SQL. Same columns, same value shapes.
REFERENCE_SQL = """\\set lon0 116.40 + random(0, 150000) / 1000000.0
\\set lat0 39.88 + random(0, 100000) / 1000000.0
INSERT INTO checkins (patrol_id, client_id, recorded_at, volunteer_id, geom, accuracy_m, flags,
                      checkpoint_id, scan_method, district_id, subdistrict_id, community_id,
                      grid_cell_id, h3_r9)
SELECT '{patrol}'::uuid, gen_random_uuid(), now() - interval '100 days' + n * interval '1 second',
       '{volunteer}'::uuid, ST_SetSRID(ST_MakePoint(:lon0 + n * 0.0001, :lat0), 4326), 8, 0,
       NULL, NULL, '{district}'::uuid, '{subdistrict}'::uuid, '{community}'::uuid, NULL,
       617700169958293503
FROM generate_series(1, {rows}) AS n;
"""

LUA = """
local patrols = {patrols}
local threads = {{}}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(index * 7919 + os.time())
  mine = {{}}
  for i, p in ipairs(patrols) do
    if (i % {threads}) == (index - 1) then
      table.insert(mine, {{id = p[1], token = p[2], t = p[3], lon = p[4], lat = p[5]}})
    end
  end
  turn = 0
end

local function hex(n, width)
  local s = ""
  for _ = 1, width do s = s .. string.format("%x", math.random(0, 15)) end
  return s
end

local function uuid4()
  return hex(0, 8) .. "-" .. hex(0, 4) .. "-4" .. hex(0, 3) .. "-" ..
         string.format("%x", math.random(8, 11)) .. hex(0, 3) .. "-" .. hex(0, 12)
end

request = function()
  turn = turn % #mine + 1
  local p = mine[turn]
  local items = {{}}
  for i = 1, {batch} do
    p.t = p.t + 1
    p.lon = p.lon + (math.random() - 0.5) * 0.0002
    p.lat = p.lat + (math.random() - 0.5) * 0.0002
    items[i] = string.format(
      '{{"client_id":"%s","recorded_at":"%s","location":{{"lon":%.7f,"lat":%.7f,"accuracy_m":8}}}}',
      uuid4(), os.date("!%Y-%m-%dT%H:%M:%SZ", p.t), p.lon, p.lat)
  end
  local body = '{{"items":[' .. table.concat(items, ",") .. ']}}'
  return wrk.format("POST", "/api/v1/patrols/" .. p.id .. "/checkins",
    {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. p.token}}, body)
end

response = function(status, headers, body)
  if status ~= 200 or string.find(body, '"rejected"') or string.find(body, '"duplicate"') then
    io.stderr:write("unexpected answer " .. status .. ": " .. string.sub(body, 1, 300) .. "\\n")
    wrk.thread:stop()
  end
end
"""


def _volunteers(app, count: int) -> list[tuple[str, str, int, float, float]]:
    """`count` volunteers with a session and a patrol started 170 days ago; for each, the
    patrol id, an access token, the patrol's start (epoch s) and a starting point."""
    from sqlalchemy import text

    from app.extensions import db
    from tests.support.people import insert_user, signed_in

    rng = random.Random(20261201)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(days=170)
    out = []
    with app.app_context():
        conn = db.session.connection()
        home = conn.execute(text("SELECT id FROM areas WHERE code = '110105001024'")).scalar_one()
        for n in range(count):
            user_id, patrol_id = uuid.uuid4(), uuid.uuid4()
            insert_user(
                conn,
                phone=f"177{n:08d}",
                name=f"压测{n}",
                id=user_id,
                roles=["volunteer"],
                home_community_id=home,
                status="active",
            )
            conn.execute(
                text(
                    "INSERT INTO patrols (id, volunteer_id, kind, status, started_at) "
                    "VALUES (:p, :u, 'walk_along', 'active', :t)"
                ),
                {"p": patrol_id, "u": user_id, "t": started},
            )
            token = signed_in(conn, app, user_id, expires=dt.timedelta(hours=6))
            out.append(
                (
                    str(patrol_id),
                    token,
                    int(started.timestamp()) + 60,
                    rng.uniform(BOX[0], BOX[2]),
                    rng.uniform(BOX[1], BOX[3]),
                )
            )
        db.session.commit()
    return out


def _reference_script(app, batch: int) -> str:
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        district, subdistrict, community = db.session.execute(
            text(
                "SELECT district_id, subdistrict_id, community_id FROM areas "
                "WHERE code = '110105001024'"
            )
        ).one()
    return REFERENCE_SQL.format(
        patrol=uuid.uuid4(),
        volunteer=uuid.uuid4(),
        district=district,
        subdistrict=subdistrict,
        community=community,
        rows=batch,
    )


def _pgbench(url: str, script: str, seconds: int, connections: int) -> tuple[float, dict, str]:
    """Transactions/s and latency percentiles (ms) from pgbench's log, and the command."""
    path = RESULTS / "checkins-reference.sql"
    path.write_text(script)
    for old in RESULTS.glob("checkins_log*"):
        old.unlink()
    command = [
        require_tool("pgbench", "postgresql-client"),
        "-n",
        "-M",
        "prepared",
        "-f",
        str(path),
        "-c",
        str(connections),
        "-j",
        str(min(connections, 2)),
        "-T",
        str(seconds),
        "--log",
        "--log-prefix",
        str(RESULTS / "checkins_log"),
    ]
    output = subprocess.run(
        command, check=True, capture_output=True, text=True, env=libpq_env(url), cwd=RESULTS
    ).stdout
    tps = float(
        re.search(r"tps = ([\d.]+) \((?:without initial connection time|excluding)", output).group(
            1
        )
    )
    latencies = []
    for log in RESULTS.glob("checkins_log*"):
        latencies += [int(line.split()[2]) / 1000 for line in log.read_text().splitlines()]
        log.unlink()
    return (
        tps,
        {"50": percentile(latencies, 0.5), "99": percentile(latencies, 0.99)},
        " ".join(command),
    )


def _lua_row(patrol: tuple[str, str, int, float, float]) -> str:
    patrol_id, token, started, lon, lat = patrol
    return f'{{"{patrol_id}","{token}",{started},{lon:.6f},{lat:.6f}}}'


def run(config: BenchConfig) -> list[Result]:
    workers = int(os.environ.get("BENCH_WORKERS", os.cpu_count() or 2))
    patrol_count = int(os.environ.get("BENCH_PATROLS", 256))
    bench_url = make_database(database_url())
    results = []
    try:
        app = bench_app(bench_url)
        migrate_and_load_demo(app)
        patrols = _volunteers(app, patrol_count)
        lua_patrols = "{" + ",".join(_lua_row(p) for p in patrols) + "}"
        os.environ["DATABASE_URL"] = bench_url
        try:
            with gunicorn(workers=workers) as base:
                for batch, target in ((BATCH, 0.25), (1, 0.15)):
                    script = LUA.format(
                        patrols=lua_patrols, threads=min(config.connections, 2), batch=batch
                    )
                    reference = _reference_script(app, batch)
                    project_rates, reference_rates = [], []
                    project_latency, reference_latency = [], []
                    for _ in range(config.rounds):
                        rate, latency, project_command = wrk_latency(
                            base, config.seconds, config.connections, script, "checkins"
                        )
                        project_rates.append(round(rate * batch, 1))
                        project_latency.append(latency)
                        tps, ref_latency, reference_command = _pgbench(
                            bench_url, reference, config.seconds, config.connections
                        )
                        reference_rates.append(round(tps * batch, 1))
                        reference_latency.append(ref_latency)
                    label = "50 check-ins per request" if batch > 1 else "one check-in per request"
                    results.append(
                        Result(
                            name=f"check-in ingest, {label}: rows per second",
                            unit="rows/s",
                            project=project_rates,
                            reference=reference_rates,
                            project_command=f"{project_command} (gunicorn, {workers} workers)",
                            reference_command=reference_command,
                            notes={
                                "project latency p50/p99 ms": [
                                    (round(x["50"], 2), round(x["99"], 2)) for x in project_latency
                                ],
                                "reference latency p50/p99 ms": [
                                    (round(x["50"], 2), round(x["99"], 2))
                                    for x in reference_latency
                                ],
                                "patrols": patrol_count,
                            },
                            target_ratio=target,
                            key="checkins.batch" if batch > 1 else "checkins.single",
                        )
                    )
        finally:
            del os.environ["DATABASE_URL"]
            with app.app_context():
                from app.extensions import db

                db.engine.dispose()
    finally:
        drop_database(bench_url)
    return results
