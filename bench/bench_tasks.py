"""Tasks: a push to 10,000 on-duty volunteers end to end, and nearest-volunteer selection.

Runs on a throw-away database of the dev cluster's server (made and dropped here), migrated and
loaded with the demo data, plus BENCH_TASK_VOLUNTEERS (default 10,000) on-duty volunteers with
the location-sharing consent, a fresh position within 1 km of a point of 南郎家园 (inside the
district: tasks are made by a district dispatcher) and a phone.

- fan-out: `POST /api/v1/tasks` (radius 1.5 km, `max_recipients` = all of them) under gunicorn,
  with BENCH_PUSH_WORKERS job workers (default 2, `flask jobs worker --concurrency 4`) sending
  through the real firebase-admin SDK to the fake FCM server of tests/fakes/fcm.py, which adds
  BENCH_FCM_DELAY_MS (default 20) to every request. Measured: from the POST's answer to the
  last push the fake server received. The reference is the SDK alone: `send_each` in chunks of
  500 of the same number of prebuilt messages to the same server, from one process, no
  database. The issue's target is absolute: under 10 s.
- nearest: the service's recipient choice (`choose_recipients`, 10 nearest within 3 km, in a
  transaction rolled back each time) among BENCH_POSITIONS (default 1,000,000) positions spread
  over Chaoyang, against the same nearest-first SELECT through pgbench; p50 latency.
BENCH_TASKS_ONLY=fan_out or =nearest runs one of the two.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.request import Request, urlopen

from bench.common import (
    ROOT,
    VENV_BIN,
    BenchConfig,
    Result,
    Target,
    bench_app,
    database_url,
    drop_database,
    gunicorn,
    make_database,
    migrate_and_load_demo,
    percentile,
    pgbench_latencies,
)
from tests.support.people import add_staff, encrypted_identities, fill_on_duty_volunteers, signed_in

POINT = (116.457036, 39.910039)  # 南郎家园, WGS-84
DISTRICT = "110105000000"
BOX = (116.35, 39.81, 116.64, 40.10)
TARGET_S = 10.0
RESULTS = ROOT / "bench" / "results"


def _sql(app, statement: str, params: dict | None = None):
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        result = db.session.execute(text(statement), params or {})
        db.session.commit()
        return result


def _identities(app, prefix: str, count: int, name: str) -> dict[str, list[bytes]]:
    with app.app_context():
        return encrypted_identities(prefix, count, name)


def _fill_volunteers(app, count: int) -> None:
    """`count` on-duty volunteers around POINT, with consent, a fresh position inside the
    district (radius tasks reach only their creator's jurisdiction) and a phone."""
    from app.extensions import db

    with app.app_context():
        fill_on_duty_volunteers(
            db.session.connection(),
            count,
            near=POINT,
            district_code=DISTRICT,
            home_code="110105001024",
        )
        db.session.commit()
    for table in ("users", "duty_status", "devices"):
        _sql(app, f"ANALYZE {table}")


def _staff_token(app) -> str:
    from app.extensions import db

    with app.app_context():
        conn = db.session.connection()
        user_id = add_staff(
            conn,
            phone="154000000000001",
            name="压测网格员1",
            roles=["grid_staff"],
            area_codes=[DISTRICT],
        )
        token = signed_in(conn, app, user_id, expires=dt.timedelta(hours=2))
        db.session.commit()
    return token


def _post_task(base: str, token: str, recipients: int) -> str:
    body = {
        "title": "压测: 东门人员聚集",
        "description": "请附近志愿者协助疏导",
        "kind": "urgent_assist",
        "location": {"lon": POINT[0], "lat": POINT[1]},
        "radius_m": 1500,
        "ends_at": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(),
        "needed": 10,
        "targeting": {"mode": "radius", "max_recipients": recipients, "widen_after_s": 0},
    }
    request = Request(  # noqa: S310 - loopback
        f"{base}/api/v1/tasks",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return json.loads(response.read())["id"]


def _workers(env: dict, count: int) -> list[subprocess.Popen]:
    """The job workers; with BENCH_PROFILE_WORKERS=<directory> each runs under py-spy, which
    writes its samples there (collapsed stacks, `worker-N.txt`) when the worker stops."""
    profile = os.environ.get("BENCH_PROFILE_WORKERS")
    command = [str(VENV_BIN / "flask"), "--app", "wsgi", "jobs", "worker", "--concurrency", "4"]
    workers = []
    for number in range(count):
        spy = []
        if profile:
            Path(profile).mkdir(parents=True, exist_ok=True)
            spy = [str(VENV_BIN / "py-spy"), "record", "--format", "raw", "--rate", "200"]
            spy += ["-o", str(Path(profile) / f"worker-{number}.txt"), "--"]
        workers.append(subprocess.Popen([*spy, *command], cwd=ROOT, env=env))
    return workers


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _phones(app, mixed: bool) -> dict[str, int]:
    """Give the bench volunteers' phones to FCM only, or 40% JPush, 30% APNs, 30% FCM (by their
    order, exactly), with tokens of each provider's form. Returns the count per provider."""
    jpush_below, apns_below = (4, 7) if mixed else (0, 0)  # n % 10: 0-3, 4-6, 7-9
    _sql(
        app,
        """
        UPDATE devices d SET provider = s.provider,
            platform = CASE s.provider WHEN 'apns' THEN 'ios' ELSE 'android' END,
            token = CASE s.provider WHEN 'apns' THEN md5(d.id::text) || md5(d.user_id::text)
                                    ELSE s.provider || '-bench-' || d.id END
        FROM (SELECT id, CASE WHEN n % 10 < :jpush THEN 'jpush' WHEN n % 10 < :apns
                              THEN 'apns' ELSE 'fcm' END AS provider FROM (
                SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM devices
                WHERE app_version = 'bench') r) s
        WHERE d.id = s.id
        """,
        {"jpush": jpush_below, "apns": apns_below},
    )
    return dict(
        _sql(
            app,
            "SELECT provider, count(*) FROM devices WHERE app_version = 'bench' GROUP BY 1",
        ).all()
    )


def _last_arrival(fakes: dict, count: int, timeout: float) -> float:
    """When (monotonic) the `count`-th push reached the fakes, all providers together."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        arrived = [fake.arrivals() for fake in fakes.values()]
        if sum(delivered for delivered, _ in arrived) >= count:
            return max(last for _, last in arrived)
        time.sleep(0.05)
    raise SystemExit(f"not all {count} pushes arrived in {timeout} s")


def _recorded(app, task_id: str, timeout: float) -> None:
    """Wait until the workers have recorded every outcome of the task's deliveries."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = _sql(
            app,
            "SELECT count(*) FROM deliveries WHERE task_id = :t AND status = 'pending'",
            {"t": task_id},
        ).scalar_one()
        if not pending:
            return
        time.sleep(0.1)
    raise SystemExit(f"deliveries still pending after {timeout} s")


def _postmaster() -> int | None:
    """The dev cluster's postmaster (its backends do the fan-out's SQL), when it is ours."""
    pid_file = ROOT / "var" / "pg" / "dev" / "postmaster.pid"
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cpu_seconds(roots: list[int]) -> float:
    """User + system CPU seconds of the processes `roots` and all their descendants: the
    benchmark (with gunicorn, the job workers and the fakes under it) and the database. A
    figure that does not depend on how busy the machine is."""
    return sum(_cpu_by_kind(roots).values())


def _kind(cmdline: bytes, under_postmaster: bool) -> str:
    if under_postmaster:
        return "database"
    if b"jobs\0worker" in cmdline:
        return "workers"
    if b"gunicorn" in cmdline:
        return "API"
    if b"spawn_main" in cmdline:
        return "fakes"
    return "benchmark"


def _cpu_by_kind(roots: list[int]) -> dict[str, float]:
    """`_cpu_seconds`, by kind of process: workers, API (gunicorn), fakes, database and the
    benchmark itself (the SDK-alone references run in it)."""
    parents, spent = {}, {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        spent[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    postmaster = roots[1] if len(roots) > 1 else None
    total: dict[str, float] = {}
    for pid, seconds in spent.items():
        ancestor = pid
        while ancestor and ancestor not in roots:
            ancestor = parents.get(ancestor, 0)
        if not ancestor:
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        kind = _kind(cmdline, ancestor == postmaster)
        total[kind] = total.get(kind, 0.0) + seconds
    return total


def _spent_since(before: dict[str, float], roots: list[int]) -> dict[str, float]:
    after = _cpu_by_kind(roots)
    return {kind: after.get(kind, 0.0) - before.get(kind, 0.0) for kind in after}


# -- each SDK alone: the references --------------------------------------------------------------


def _fcm_alone(credentials: Path, endpoint: str, count: int) -> float:
    """Seconds firebase-admin alone takes to send `count` messages with its own
    `messaging.send_each` (chunks of 500, a thread a message, requests), the same messages as
    FcmSender's; no database. The SDK has no option for another endpoint: its URL and its
    session's pool sizes are set here (the benchmark only)."""
    import firebase_admin
    import requests
    from firebase_admin import _http_client, messaging
    from firebase_admin import credentials as firebase_credentials

    from notifications.push import FcmSender, Push

    app = firebase_admin.initialize_app(
        firebase_credentials.Certificate(str(credentials)), name=f"reference-{time.monotonic()}"
    )
    service = messaging._get_messaging_service(app)
    service._fcm_url = f"{endpoint}/v1/projects/{service._project_id}/messages:send"
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=100, pool_maxsize=500, max_retries=_http_client.DEFAULT_RETRY_CONFIG
    )
    service._client.session.mount(endpoint, adapter)
    build = FcmSender(credentials_file=str(credentials))._message
    texts = ("压测: 东门人员聚集", "请协助疏导", {"kind": "task_offered"})
    messages = [build(Push(n, f"reference-{n}", *texts)) for n in range(count)]
    started = time.monotonic()
    sent = sum(
        messaging.send_each(messages[start : start + 500], app=app).success_count
        for start in range(0, count, 500)
    )
    elapsed = time.monotonic() - started
    firebase_admin.delete_app(app)
    if sent != count:
        raise SystemExit("the reference's FCM sends failed")
    return elapsed


def _apns_alone(fake, key_file: Path, count: int) -> float:
    """Seconds a bare httpx HTTP/2 client takes to send `count` prebuilt APNs requests, 100 in
    flight on one connection (bench_push_providers' reference; APNs has no SDK)."""
    from bench.common import bare_apns_seconds, push_batch
    from notifications.apns import CONCURRENCY, ApnsSender
    from tests.fakes import apns as fake_apns

    signer = ApnsSender(str(key_file), fake.key_id, fake.team_id, fake.topic, fake.base_url)
    headers = {
        "authorization": f"bearer {signer._token.get()}",
        "apns-topic": fake.topic,
        "apns-push-type": "alert",
        "apns-priority": "10",
        "content-type": "application/json",
    }
    pushes = push_batch(count, lambda _n: fake_apns.device_token())
    return bare_apns_seconds(fake.base_url, headers, pushes, CONCURRENCY)


def _jpush_alone(fake, count: int) -> float:
    """Seconds the official JPush SDK alone takes to push one content to `count` registration
    ids: batches of 1000, 4 at a time (as the sender)."""
    from concurrent.futures import ThreadPoolExecutor

    import jpush

    from notifications.jpush import BATCH, JPushSender

    client = JPushSender(fake.app_key, fake.master_secret, endpoint=fake.base_url)._jpush()

    def batch(start: int) -> int:
        request = client.create_push()
        ids = [f"1a0018970a{n:09d}" for n in range(start, min(count, start + BATCH))]
        request.audience = jpush.audience(jpush.registration_id(*ids))
        request.platform = jpush.all_
        request.notification = jpush.notification(alert="请附近志愿者协助疏导")
        return request.send().status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(batch, range(0, count, BATCH)))
    if set(statuses) != {200}:
        raise SystemExit(f"the reference's JPush pushes failed: {set(statuses)}")
    return time.monotonic() - started


def _all_alone(fakes, credentials: Path, key_file: Path, shares: dict[str, int]) -> float:
    """The three SDKs alone at once, each sending its share: seconds to the last one done."""
    from concurrent.futures import ThreadPoolExecutor

    alone = {
        "fcm": lambda n: _fcm_alone(credentials, fakes["fcm"].base_url, n),
        "apns": lambda n: _apns_alone(fakes["apns"], key_file, n),
        "jpush": lambda n: _jpush_alone(fakes["jpush"], n),
    }
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda item: alone[item[0]](item[1]), shares.items()))
    return time.monotonic() - started


def _clear(fakes: dict) -> None:
    for fake in fakes.values():
        fake.clear()


def fan_out(config: BenchConfig, bench_url: str, app) -> list[Result]:
    """FCM-only and mixed fan-outs to the same volunteers, round by round, each beside its
    reference; and each SDK alone sending as many pushes to its fake."""
    from tests.fakes import process as fake_process

    volunteers = int(os.environ.get("BENCH_TASK_VOLUNTEERS", 10_000))
    delay_ms = float(os.environ.get("BENCH_FCM_DELAY_MS", 20))
    worker_count = int(os.environ.get("BENCH_PUSH_WORKERS", 2))
    _fill_volunteers(app, volunteers)
    token = _staff_token(app)
    scenarios: dict[str, tuple[list[float], list[float]]] = {"fcm": ([], []), "mixed": ([], [])}
    cpu: dict[str, list[float]] = {"fcm": [], "mixed": []}
    cpu_kinds: dict[str, list[dict[str, float]]] = {"fcm": [], "mixed": []}
    alone: dict[str, list[float]] = {"fcm": [], "apns": [], "jpush": []}
    alone_cpu: dict[str, list[float]] = {"fcm": [], "apns": [], "jpush": []}
    shares: dict[str, dict[str, int]] = {}
    delay = delay_ms / 1000
    roots = [os.getpid(), *filter(None, [_postmaster()])]
    with (
        tempfile.TemporaryDirectory() as tmp,
        fake_process.running("fcm", delay, Path(tmp)) as fcm,
        fake_process.running("apns", delay, Path(tmp)) as apns,
        fake_process.running("jpush", delay, Path(tmp)) as jpush,
    ):
        fakes = {"fcm": fcm, "apns": apns, "jpush": jpush}
        credentials = Path(fcm.credentials_file)
        key_file = Path(apns.key_file)
        env = {
            **os.environ,
            "DATABASE_URL": bench_url,
            "FCM_CREDENTIALS_FILE": str(credentials),
            "FCM_ENDPOINT": fcm.base_url,
            "APNS_KEY_FILE": str(key_file),
            "APNS_KEY_ID": apns.key_id,
            "APNS_TEAM_ID": apns.team_id,
            "APNS_TOPIC": apns.topic,
            "APNS_ENDPOINT": apns.base_url,
            "JPUSH_APP_KEY": jpush.app_key,
            "JPUSH_MASTER_SECRET": jpush.master_secret,
            "JPUSH_ENDPOINT": jpush.base_url,
            "LOG_LEVEL": "WARNING",
        }
        workers = _workers(env, worker_count)
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            with gunicorn(workers=2) as base:
                for _ in range(config.rounds):
                    for scenario, (project, reference) in scenarios.items():
                        shares[scenario] = _phones(app, mixed=scenario == "mixed")
                        _clear(fakes)
                        spent = _cpu_by_kind(roots)
                        task_id = _post_task(base, token, volunteers)
                        answered = time.monotonic()
                        last = _last_arrival(fakes, volunteers, timeout=300)
                        project.append(round(last - answered, 2))
                        _recorded(app, task_id, timeout=300)
                        kinds = _spent_since(spent, roots)
                        cpu[scenario].append(round(sum(kinds.values()), 1))
                        cpu_kinds[scenario].append(kinds)
                        _clear(fakes)
                        if scenario == "fcm":
                            seconds = _fcm_alone(credentials, fcm.base_url, volunteers)
                        else:
                            seconds = _all_alone(fakes, credentials, key_file, shares[scenario])
                        reference.append(round(seconds, 2))
                    _clear(fakes)
                    for name, send_alone in (
                        ("fcm", lambda: _fcm_alone(credentials, fcm.base_url, volunteers)),
                        ("apns", lambda: _apns_alone(apns, key_file, volunteers)),
                        ("jpush", lambda: _jpush_alone(jpush, volunteers)),
                    )[: 0 if os.environ.get("BENCH_SDK_ALONE") == "0" else 3]:
                        spent = _cpu_seconds(roots)
                        alone[name].append(round(send_alone(), 2))
                        alone_cpu[name].append(round(_cpu_seconds(roots) - spent, 1))
                        _clear(fakes)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            for worker in workers:
                for child in _children(worker.pid):  # under py-spy: stop the worker itself
                    os.kill(child, signal.SIGTERM)
                if not os.environ.get("BENCH_PROFILE_WORKERS"):
                    worker.terminate()
            for worker in workers:
                worker.wait(timeout=30)
    sdk_alone = {
        f"{name} SDK alone, {volunteers:,} pushes, s": f"{statistics.median(times):g} "
        f"(median of {times})"
        for name, times in alone.items()
        if times
    }
    sdk_alone.update(
        {
            f"{name} SDK alone, CPU s (client + fake + idle workers)": f"{statistics.median(s):g} "
            f"(median of {s})"
            for name, s in alone_cpu.items()
            if s
        }
    )
    project_command = (
        f"POST /api/v1/tasks (gunicorn, 2 workers) + {worker_count} × `flask jobs worker "
        "--concurrency 4`: FcmSender (aiohttp, SDK messages), ApnsSender (HTTP/2), JPushSender "
        "(official SDK, batches), a send job's providers at once"
    )
    results = []
    for scenario, label, reference_command in (
        ("fcm", "FCM only", "firebase-admin's own send_each alone (chunks of 500)"),
        (
            "mixed",
            "40% JPush, 30% APNs, 30% FCM",
            "each SDK alone with its share, the three at once (firebase-admin send_each; "
            "bare httpx HTTP/2, 100 streams; JPush SDK, batches of 1000)",
        ),
    ):
        project, reference = scenarios[scenario]
        results.append(
            Result(
                name=f"task pushed to {volunteers:,} on-duty volunteers, {label}, every fake "
                f"+{delay_ms:g} ms a request: POST answered to last push received",
                unit="s",
                project=project,
                reference=reference,
                project_command=project_command,
                reference_command=reference_command,
                notes={
                    "phones per provider": shares[scenario],
                    "CPU s, POST to every outcome recorded (API, workers, fakes, database)": (
                        f"{statistics.median(cpu[scenario]):g} (median of {cpu[scenario]})"
                    ),
                    "of which, by process (medians)": {
                        kind: round(statistics.median(k.get(kind, 0.0) for k in kinds), 2)
                        for kinds in [cpu_kinds[scenario]]
                        for kind in ("workers", "database", "API", "fakes", "benchmark")
                    },
                    **sdk_alone,
                },
                higher_is_better=False,
                target=Target("project", "<", TARGET_S),
                key=f"tasks.fan_out_{scenario}",
            )
        )
    return results


# The service's RADIUS_SQL as PostgreSQL runs it for a district dispatcher (its `:everywhere
# OR EXISTS` keeps the jurisdiction test a per-row filter of the nearest-first index scan), the
# INSERT left out.
NEAREST_SQL = """
SELECT d.user_id, ST_Distance(d.geog, 'SRID=4326;POINT({lon} {lat})'::geography)
FROM duty_status d CROSS JOIN LATERAL (
    SELECT u.id FROM users u
    WHERE u.id = d.user_id AND u.location_sharing
      AND u.status = 'active' AND 'volunteer' = ANY(u.roles) AND u.skills @> '{{}}'::varchar[]
      AND NOT EXISTS (SELECT 1 FROM task_recipients r
                      WHERE r.task_id = '{task}' AND r.user_id = u.id)
    OFFSET 0) AS u
WHERE d.geom IS NOT NULL AND d.position_at > now() - make_interval(mins => 120)
  AND ST_DWithin(d.geog, 'SRID=4326;POINT({lon} {lat})'::geography, 3000)
  AND (false OR EXISTS (SELECT 1 FROM area_pieces pc
                       WHERE pc.area_id = ANY('{{{district}}}'::uuid[])
                         AND ST_Intersects(pc.geom, d.geom)))
ORDER BY d.geog <-> 'SRID=4326;POINT({lon} {lat})'::geography
LIMIT 10;
"""


def nearest(config: BenchConfig, bench_url: str, app) -> Result:
    from sqlalchemy import func, select, text

    from app.extensions import db
    from app.tasks import service as tasks_service
    from app.tasks.models import Task

    positions = int(os.environ.get("BENCH_POSITIONS", 1_000_000))
    west, south, east, north = BOX
    _sql(
        app,
        """
        WITH made AS (
            INSERT INTO users (id, phone_ciphertext, phone_hmac, real_name_ciphertext,
                               password_hash, roles, status, location_sharing)
            SELECT gen_random_uuid(), (CAST(:phone_ct AS bytea[]))[n],
                   (CAST(:phone_hmac AS bytea[]))[n], (CAST(:name_ct AS bytea[]))[n], 'x',
                   ARRAY['volunteer'], 'active', true
            FROM generate_series(1, :count) AS n
            RETURNING id
        )
        INSERT INTO duty_status (user_id, geom, position_at)
        SELECT id, ST_SetSRID(ST_MakePoint(:w + random() * (:e - :w),
                                           :s + random() * (:n - :s)), 4326), now()
        FROM made
        """,
        {
            "count": positions,
            "w": west,
            "e": east,
            "s": south,
            "n": north,
            **_identities(app, "156", positions, "p"),
        },
    )
    for table in ("users", "duty_status"):
        _sql(app, f"ANALYZE {table}")
    rng = random.Random(7)
    task_ids = []
    dispatcher = uuid.uuid4()
    _sql(
        app,
        "INSERT INTO users (id, phone_ciphertext, phone_hmac, real_name_ciphertext, "
        "password_hash, roles, status) VALUES (:u, (CAST(:phone_ct AS bytea[]))[1], "
        "(CAST(:phone_hmac AS bytea[]))[1], (CAST(:name_ct AS bytea[]))[1], 'x', "
        "ARRAY['grid_staff'], 'active')",
        {"u": dispatcher, **_identities(app, "1540001", 1, "压测调度员")},
    )
    _sql(
        app,
        "INSERT INTO user_areas (user_id, area_id) SELECT :u, id FROM areas WHERE code = :d",
        {"u": dispatcher, "d": DISTRICT},
    )
    with app.app_context():
        district_id = db.session.scalar(
            text("SELECT id FROM areas WHERE code = :c"), {"c": DISTRICT}
        )
        points = []
        while len(points) < 20:  # a dispatcher's task lies inside their jurisdiction
            lon, lat = (
                rng.uniform(west + 0.02, east - 0.02),
                rng.uniform(south + 0.02, north - 0.02),
            )
            inside = db.session.scalar(
                text(
                    "SELECT EXISTS (SELECT 1 FROM area_pieces WHERE area_id = :d "
                    "AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)))"
                ),
                {"d": district_id, "lon": lon, "lat": lat},
            )
            if inside:
                points.append((lon, lat))
        for lon, lat in points:
            db.session.execute(
                Task.__table__.insert().values(
                    id=uuid.uuid4(),
                    title="n",
                    kind="patrol",
                    status="open",
                    geom=f"SRID=4326;POINT({lon} {lat})",
                    radius_m=3000,
                    starts_at=dt.datetime.now(dt.UTC),
                    ends_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=6),
                    needed=3,
                    accepted=0,
                    targeting_mode="radius",
                    created_by=dispatcher,
                    phase=0,
                    targeting={"max_recipients": 10, "max_radius_m": 3000, "widen_after_s": 0},
                )
            )
        db.session.commit()
        task_ids = db.session.scalars(select(Task.id).where(Task.title == "n")).all()
        project = []
        for round_no in range(config.rounds * 100 + 20):
            task_row = db.session.get(Task, task_ids[round_no % len(task_ids)])
            started = time.perf_counter()
            tasks_service.choose_recipients(db.session, task_row, 0)
            project.append((time.perf_counter() - started) * 1000)
            db.session.rollback()
        project = project[20:]
    script = RESULTS / "tasks-nearest.sql"
    RESULTS.mkdir(exist_ok=True)
    reference = []
    with app.app_context():
        points = db.session.execute(
            select(Task.id, func.ST_X(Task.geom), func.ST_Y(Task.geom)).where(Task.title == "n")
        ).all()
    for task_id, lon, lat in points:
        script.write_text(NEAREST_SQL.format(task=task_id, lon=lon, lat=lat, district=district_id))
        reference += pgbench_latencies(script, bench_url, config.rounds * 5 + 1, "tasks")[1:]
    return Result(
        name=f"10 nearest on-duty volunteers within 3 km among {positions:,} positions: p50",
        unit="ms",
        project=[round(statistics.median(project), 2)],
        reference=[round(statistics.median(reference), 2)],
        project_command="app.tasks.service.choose_recipients (SQLAlchemy, INSERT ... SELECT, "
        "rolled back), sequential",
        reference_command=f"pgbench -n -c 1 -f {script} (the SELECT alone), per-transaction log",
        notes={
            "project p99 ms": round(percentile(project, 0.99), 2),
            "reference p99 ms": round(percentile(reference, 0.99), 2),
        },
        higher_is_better=False,
    )


PARTS = {"fan_out": fan_out, "nearest": nearest}


def run(config: BenchConfig) -> list[Result]:
    sys.path.insert(0, str(ROOT))
    bench_url = make_database(database_url())
    try:
        app = bench_app(bench_url)
        migrate_and_load_demo(app)
        parts = os.environ.get("BENCH_TASKS_ONLY", "fan_out,nearest").split(",")
        results = []
        for part in parts:
            made = PARTS[part](config, bench_url, app)
            results += made if isinstance(made, list) else [made]
        with app.app_context():
            from app.extensions import db

            db.engine.dispose()
        return results
    finally:
        drop_database(bench_url)
