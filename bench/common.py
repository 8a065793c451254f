"""Shared pieces of the benchmarks: settings, the result line, a server and the load tools."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.request import urlopen

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"


@dataclass(frozen=True)
class BenchConfig:
    rounds: int = 3
    seconds: int = 10
    connections: int = 4

    @classmethod
    def from_env(cls) -> BenchConfig:
        return cls(
            rounds=int(os.environ.get("BENCH_ROUNDS", 3)),
            seconds=int(os.environ.get("BENCH_SECONDS", 10)),
            connections=int(os.environ.get("BENCH_CONNECTIONS", 4)),
        )


_COMPARE = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


@dataclass(frozen=True)
class Target:
    """What a result must reach: its ratio (project / reference) or the project's own median
    (an absolute target, in the result's unit), compared with `op`."""

    of: str  # "ratio" or "project"
    op: str  # one of _COMPARE
    value: float

    def holds(self, result: Result) -> bool:
        figure = result.ratio if self.of == "ratio" else statistics.median(result.project)
        return _COMPARE[self.op](figure, self.value)

    def __str__(self) -> str:
        return f"{self.of}{self.op}{self.value:g}"


@dataclass
class Result:
    """One comparison: the project's figure against its reference's, measured in one run.

    `key` names it on its RESULT line (run.py gives `<benchmark>.<n>` to results without one).
    `target` is what it must reach; `target_ratio` is the short form of a ratio target (at
    least that much when higher is better, at most when lower is)."""

    name: str
    unit: str
    project: list[float]
    reference: list[float]
    project_command: str
    reference_command: str
    notes: dict = field(default_factory=dict)
    higher_is_better: bool = True
    target_ratio: float | None = None
    target: Target | None = None
    key: str = ""

    def __post_init__(self) -> None:
        if self.target is None and self.target_ratio is not None:
            op = ">=" if self.higher_is_better else "<="
            self.target = Target("ratio", op, self.target_ratio)

    @property
    def ratio(self) -> float:
        return statistics.median(self.project) / statistics.median(self.reference)

    @property
    def within_target(self) -> bool | None:
        return None if self.target is None else self.target.holds(self)

    @property
    def verdict(self) -> str:
        return {None: "-", True: "met", False: "missed"}[self.within_target]

    def report(self) -> str:
        med_p, med_r = statistics.median(self.project), statistics.median(self.reference)
        better = "higher" if self.higher_is_better else "lower"
        target = f"  target     {self.target}: {self.verdict}\n" if self.target else ""
        return (
            f"{self.name}\n"
            f"  project    {med_p:10.1f} {self.unit} (median of {self.project})\n"
            f"  reference  {med_r:10.1f} {self.unit} (median of {self.reference})\n"
            f"  ratio      {self.ratio:10.3f} (project / reference; {better} is better)\n"
            + target
            + f"  project command:   {self.project_command}\n"
            f"  reference command: {self.reference_command}\n"
            + "".join(f"  {k}: {v}\n" for k, v in self.notes.items())
        )

    def result_line(self) -> str:
        """`RESULT <key> project=<v><unit> reference=<v><unit> ratio=<r> target=<t> <verdict>`,
        one line that `make bench` collects into its table."""
        med_p, med_r = statistics.median(self.project), statistics.median(self.reference)
        unit = self.unit.replace(" ", "")
        return (
            f"RESULT {self.key} project={med_p:g}{unit} reference={med_r:g}{unit} "
            f"ratio={self.ratio:.3f} target={self.target or 'none'} {self.verdict}"
        )

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "target": str(self.target) if self.target else None,
            "ratio": self.ratio,
            "within_target": self.within_target,
        }


def database_url() -> str:
    """The owner's role of the dev database: benchmarks make their own databases and tune them
    (VACUUM, CLUSTER), which the application's role may not do."""
    sys.path.insert(0, str(ROOT))
    from app.config import default_migration_database_url

    return default_migration_database_url()


def libpq_env(url: str) -> dict[str, str]:
    """Environment for psql/pgbench to reach the database of a SQLAlchemy URL, in a session set
    as the application's are (JIT off unless DB_JIT=on: app/config.py), so that a reference
    runs its SQL under the same settings as the project."""
    parsed = make_url(url)
    return {
        **os.environ,
        "PGOPTIONS": f"-c jit={'on' if os.environ.get('DB_JIT', 'off') == 'on' else 'off'}"
        " -c plan_cache_mode=force_custom_plan",
        "PGHOST": parsed.host or "127.0.0.1",
        "PGPORT": str(parsed.port or 5432),
        "PGUSER": parsed.username or "",
        "PGPASSWORD": parsed.password or "",
        "PGDATABASE": parsed.database or "",
    }


def require_tool(name: str, debian_package: str) -> str:
    """The path of a load tool, installing its Debian package when it is missing."""
    path = shutil.which(name)
    if path:
        return path
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", debian_package], check=True)
    path = shutil.which(name)
    if not path:
        raise SystemExit(f"{name} is not available even after installing {debian_package}")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(workers: int) -> Iterator[str]:
    """The API under gunicorn on a free loopback port; yields its base URL."""
    port = free_port()
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a loaded shared machine imports slowly
        while True:
            try:
                with urlopen(f"{base}/readyz", timeout=10) as response:  # noqa: S310 - loopback
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("gunicorn did not become ready")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def wrk(url: str, seconds: int, connections: int) -> tuple[float, str]:
    """Requests per second that wrk measured, and the command."""
    rate, _latency, command = wrk_latency(url, seconds, connections)
    return rate, command


def wrk_latency(
    url: str, seconds: int, connections: int, script: str | None = None, name: str = "wrk"
) -> tuple[float, dict[str, float], str]:
    """Requests/s and the 50th and 99th latency percentiles (ms) wrk measured, and the command;
    `script` is a Lua script for wrk (written to bench/results/<name>.lua). A non-2xx answer or
    a Lua `error` (a script's check of an answer) ends the benchmark."""
    command = [
        require_tool("wrk", "wrk"),
        f"-t{min(connections, 2)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
    ]
    if script is not None:
        path = ROOT / "bench" / "results" / f"{name}.lua"
        path.parent.mkdir(exist_ok=True)
        path.write_text(script)
        command += ["-s", str(path)]
    command.append(url)
    run = subprocess.run(command, check=True, capture_output=True, text=True)
    if "unexpected answer" in run.stderr:
        raise SystemExit(f"{url} refused the load:\n{run.stderr[:2000]}")
    output = run.stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise SystemExit(f"{errors.group(1)} failed responses from {url}:\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = {}
    for label, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M):
        latency[label] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rate, latency, " ".join(command)


def pgbench(script: str, url: str, seconds: int, connections: int) -> tuple[float, str]:
    """Transactions per second that pgbench measured for a custom script, and the command."""
    script_path = ROOT / "bench" / "results" / "pgbench-script.sql"
    script_path.parent.mkdir(exist_ok=True)
    script_path.write_text(script)
    command = [
        require_tool("pgbench", "postgresql-client"),
        "-n",
        "-f",
        str(script_path),
        "-c",
        str(connections),
        "-j",
        str(min(connections, 2)),
        "-T",
        str(seconds),
    ]
    output = subprocess.run(
        command, check=True, capture_output=True, text=True, env=libpq_env(url)
    ).stdout
    tps = re.search(r"tps = ([\d.]+) \((?:without initial connection time|excluding)", output)
    return float(tps.group(1)), " ".join(command)


def pgbench_latencies(
    script: Path | list[Path], url: str, transactions: int, name: str, warm_up: int = 0
) -> list[float]:
    """Milliseconds per transaction of one pgbench client running `script` (or one of several
    scripts, picked at random, each time) `transactions` times after `warm_up` more left out,
    from pgbench's per-transaction log (bench/results/<name>_log*)."""
    scripts = script if isinstance(script, list) else [script]
    workdir = ROOT / "bench" / "results"
    workdir.mkdir(exist_ok=True)
    for old in workdir.glob(f"{name}_log*"):
        old.unlink()
    command = [
        require_tool("pgbench", "postgresql-client"),
        "-n",
        "-c",
        "1",
        "-t",
        str(transactions + warm_up),
        *[arg for path in scripts for arg in ("-f", str(path))],
        "--log",
        "--log-prefix",
        str(workdir / f"{name}_log"),
    ]
    subprocess.run(command, check=True, capture_output=True, env=libpq_env(url), cwd=workdir)
    latencies: list[float] = []
    for log in sorted(workdir.glob(f"{name}_log*")):
        latencies.extend(int(line.split()[2]) / 1000 for line in log.read_text().splitlines())
        log.unlink()
    return latencies[warm_up:]


def geojson_latencies(
    url_at, token: str, now, requests: int, warm_up: int, jitter_s: int, seed: int
) -> tuple[list[float], int]:
    """Milliseconds per sequential GeoJSON request (warm-up left out) and the fewest features
    one answer held. `url_at(to)` makes each request's URL for a `to` moved back by a random
    0..jitter_s seconds from `now`, so that nothing can be cached."""
    import datetime as dt
    import json
    import random
    from urllib.request import Request

    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    fewest = None
    for i in range(requests + warm_up):
        url = url_at(now - dt.timedelta(seconds=rng.randint(0, jitter_s)))
        started = time.perf_counter()
        with urlopen(Request(url, headers=headers), timeout=60) as response:  # noqa: S310
            status, body = response.status, response.read()
        elapsed = (time.perf_counter() - started) * 1000
        features = len(json.loads(body)["features"])
        if status != 200 or not features:
            raise SystemExit(f"{url} answered {status} with {features} features")
        fewest = features if fewest is None else min(fewest, features)
        if i >= warm_up:
            latencies.append(elapsed)
    return latencies, fewest


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- throw-away databases on the dev cluster's server ---------------------------------------------


def make_database(base_url: str) -> str:
    """A new, empty database on the server of `base_url`; its URL."""
    url = sa.engine.make_url(base_url)
    name = f"qunfang_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(bench_url: str) -> None:
    url = sa.engine.make_url(bench_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    admin.dispose()


def bench_app(bench_url: str):
    """The application on a benchmark's database, for its fills and in-process measurements,
    without the request's statement bounds: a fill of a million rows runs longer than a request
    may (the bounds change no plan; the API under gunicorn keeps its own)."""
    from app import create_app
    from app.config import Config, database_connect_args

    config = Config.from_env(SQLALCHEMY_DATABASE_URI=bench_url)
    config.SQLALCHEMY_ENGINE_OPTIONS["connect_args"] = database_connect_args(
        connect_timeout_s=10,
        statement_timeout_s=0,
        idle_in_transaction_s=0,
        jit=os.environ.get("DB_JIT", "off") == "on",
    )
    return create_app(config)


def migrate_and_load_demo(app) -> None:
    """The schema at head and the demo data, as `flask db upgrade` + `flask demo load` make it."""
    import flask_migrate

    from app import demo
    from app.core.schema_version import MIGRATIONS_DIR
    from app.extensions import db

    with app.app_context():
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
        demo.load(db.session, log=lambda line: None)
        db.session.commit()


# -- stations on a benchmark's database (stations_nearby, peers) --------------------------------

STATIONS = 100_000
STATIONS_BOX = (116.35, 39.81, 116.64, 40.10)  # west, south, east, north: Chaoyang's bounds

_STATIONS_SQL = """
INSERT INTO stations (id, type, name, geom, amenities, opening_hours, hours_exceptions,
                      status, visit_code, generated)
SELECT gen_random_uuid(),
       (ARRAY['rider_station', 'volunteer_post', 'community_service_centre'])[1 + n %% 3],
       'bench station ' || n,
       ST_SetSRID(ST_MakePoint(%(w)s + random() * (%(e)s - %(w)s),
                               %(s)s + random() * (%(n)s - %(s)s)), 4326),
       CASE WHEN n %% 3 = 0 THEN ARRAY['charging', 'hot_water'] ELSE ARRAY['wifi'] END,
       '{}'::jsonb, '[]'::jsonb, 'active', md5(n::text), true
FROM generate_series(1, %(count)s) AS n
"""
_OPEN_PERIODS_SQL = """
INSERT INTO station_open_periods (station_id, during)
SELECT id, tstzrange(now() - interval '1 day', now() + interval '1 day')
FROM stations WHERE random() < 0.7
"""


def fill_stations(bench_url: str, count: int = STATIONS, box=STATIONS_BOX) -> None:
    """The schema at head and `count` active stations spread over `box`, 70% open now, a third
    with `charging`."""
    import flask_migrate

    from app.core.schema_version import MIGRATIONS_DIR
    from app.extensions import db

    west, south, east, north = box
    app = bench_app(bench_url)
    with app.app_context():
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
        raw = db.engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                cursor.execute(
                    _STATIONS_SQL, {"w": west, "e": east, "s": south, "n": north, "count": count}
                )
                cursor.execute(_OPEN_PERIODS_SQL)
                cursor.execute("ANALYZE stations")
                cursor.execute("ANALYZE station_open_periods")
            raw.commit()
        finally:
            raw.close()
        db.engine.dispose()


# -- pushes (push_providers, tasks) -------------------------------------------------------------


def push_batch(count: int, token) -> list:
    """`count` pushes of one task offer, the n-th to `token(n)` (the push benchmarks' load)."""
    from notifications.push import Push

    return [
        Push(n, token(n), "压测: 东门人员聚集", "请附近志愿者协助疏导", {"kind": "task_offered"})
        for n in range(count)
    ]


def bare_apns_seconds(endpoint: str, headers: dict, pushes, concurrency: int) -> float:
    """Seconds a bare httpx HTTP/2 client takes to post `pushes` to an APNs server,
    `concurrency` in flight on one connection, reading only the status: the reference of the
    APNs sender (bench_push_providers, bench_tasks)."""
    import httpx

    from notifications.apns import payload

    async def main() -> float:
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=endpoint, http1=False, http2=True) as client:

            async def one(push) -> int:
                async with gate:
                    response = await client.post(
                        f"/3/device/{push.token}", content=payload(push), headers=headers
                    )
                    return response.status_code

            started = time.monotonic()
            statuses = await asyncio.gather(*(one(p) for p in pushes))
            elapsed = time.monotonic() - started
        if set(statuses) != {200}:
            raise SystemExit(f"the reference's APNs requests failed: {set(statuses)}")
        return elapsed

    return asyncio.run(main())
