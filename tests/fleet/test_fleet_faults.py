"""Faults on the whole fleet of `make fleet` (scripts/fleet.sh): PostgreSQL primary and streaming
replica, PgBouncer, redis, moto's S3 server, two gunicorn nodes behind haproxy, two job workers,
all real processes on loopback.

Under check-in, tip and task load through the load balancer, one app node is killed (SIGKILL of
its whole process group), then one worker, then the replica is stopped; each is brought back with
`scripts/fleet.sh start` / `scripts/db.sh replica fleet`. Clients retry a failed write with the
same Idempotency-Key, as the phones do. Afterwards every acknowledged (2xx) write is in the
primary, every job deferred (one per task created) has succeeded, heavy reads answered from the
primary while the replica was down and from the replica again after.

It also measures requests/s through haproxy with one node (the other in maintenance) and two.

Slow (a few minutes) and it owns var/fleet: only with FLEET=1 (`make fleet-test`).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.config import PROJECT_ROOT
from app.demo import DEMO_PASSWORD
from tests.ops.processes import base_environment, wait_until

FLEET = PROJECT_ROOT / "var" / "fleet"

STAFF, VOLUNTEER = "13800000003", "13800000005"
LON, LAT = 116.459, 39.906  # inside the demo grid staff's cell 110105001024
FAULT_S = 6
MEASURE_S = 4
ROUNDS = 3


def _script(*args: str, env: dict[str, str], check: bool = True) -> str:
    done = subprocess.run(  # noqa: S603 - our own scripts
        [str(PROJECT_ROOT / "scripts" / args[0]), *args[1:]],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert not check or done.returncode == 0, done.stderr[-3000:]
    return done.stdout


class Client:
    """JSON over HTTP to the load balancer, one new connection per request."""

    def __init__(self, base: str, token: str | None = None):
        self.base, self.token = base, token

    def call(self, method: str, path: str, body=None, key: str | None = None, timeout=15):
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if key:
            headers["Idempotency-Key"] = key
        request = urllib.request.Request(  # noqa: S310 - loopback only
            self.base + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers=headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}"), response.headers
        except urllib.error.HTTPError as exc:
            return exc.code, {}, exc.headers
        except (OSError, TimeoutError, http.client.HTTPException):
            # No answer, or one cut short (a node killed while sending it): not acknowledged.
            return 0, {}, {}


class Fleet:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.base = _script("fleet.sh", "url", env=env).strip()
        self.owner_url = (PROJECT_ROOT / "var" / "pg" / "fleet.url").read_text().strip()

    def pid(self, part: str) -> int:
        return int((FLEET / f"{part}.pid").read_text())

    def kill(self, part: str) -> None:
        os.killpg(self.pid(part), signal.SIGKILL)

    def haproxy(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(FLEET / "haproxy.sock"))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_up(self, name: str) -> bool:
        for line in self.haproxy("show stat").splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[0] == "app_nodes" and fields[1] == name:
                return fields[17] == "UP"
        return False


@pytest.fixture(scope="module")
def fleet():
    env = base_environment(
        # Load from one address: the limits meant for phones would stop the test, not the fleet.
        TIP_RATE_LIMIT="100000 per hour",
        LOGIN_CLIENT_RATE_LIMIT="1000 per minute",
        LOGIN_RATE_LIMIT="1000 per minute",
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_KIB="1024",
        JOB_STALLED_AFTER_S="6",
        QF_DEMO_SIMULATE="0",
    )
    assert not (FLEET / "haproxy.pid").exists() or not _pid_alive(FLEET / "haproxy.pid"), (
        "a fleet is running (make fleet): stop it first"
    )
    try:
        _script("fleet.sh", "start", env=env)
        yield Fleet(env)
    finally:
        _script("fleet.sh", "stop", env=env, check=False)


def _pid_alive(path: Path) -> bool:
    try:
        os.kill(int(path.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def _login(base: str, phone: str) -> Client:
    status, body, _ = Client(base).call(
        "POST", "/api/v1/auth/login", {"phone": phone, "password": DEMO_PASSWORD}
    )
    assert status == 200, body
    return Client(base, body["access_token"])


def _new_patrol(volunteer: Client) -> dict:
    """A new patrol of the demo volunteer, ending those a previous run left open (one at a time)."""
    status, page, _ = volunteer.call("GET", "/api/v1/patrols?page_size=100")
    assert status == 200, page
    for open_patrol in (p for p in page["items"] if p.get("ended_at") is None):
        status, body, _ = volunteer.call("POST", f"/api/v1/patrols/{open_patrol['id']}/end", {})
        assert status == 200, body
    status, patrol, _ = volunteer.call(
        "POST", "/api/v1/patrols", {"kind": "walk_along", "started_at": _now()}
    )
    assert status == 201, patrol
    return patrol


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class Load:
    """Writers that retry with the same key until acknowledged, and a reader of heavy reads."""

    def __init__(self, volunteer: Client, staff: Client, patrol_id: str):
        self.volunteer, self.staff, self.patrol_id = volunteer, staff, patrol_id
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.checkins: list[str] = []
        self.tips: list[str] = []
        self.tasks: list[str] = []
        self.errors: list[tuple[float, str, int]] = []  # (when, kind, status) of failed tries
        self.reads: list[tuple[float, int, str]] = []  # (when, status, Qunfang-Read-Source)
        self.threads: list[threading.Thread] = []

    def _until_acknowledged(self, kind: str, client: Client, path: str, body: dict) -> dict | None:
        key = str(uuid.uuid4())
        while True:
            status, answer, _ = client.call("POST", path, body, key=key)
            if 200 <= status < 300:
                return answer
            with self.lock:
                self.errors.append((time.monotonic(), kind, status))
            if 400 <= status < 500 and status not in (409, 429):
                raise AssertionError(f"{kind}: unexpected {status} {answer}")
            if self.stop.is_set() and time.monotonic() > self.stopped_at + 60:
                return None
            time.sleep(0.1)

    def _checkins(self) -> None:
        lon = LON
        while not self.stop.is_set():
            items = []
            for _ in range(5):
                lon += 0.000005
                loc = {"lon": lon, "lat": LAT, "accuracy_m": 8}
                items.append(
                    {"client_id": str(uuid.uuid4()), "recorded_at": _now(), "location": loc}
                )
            path = f"/api/v1/patrols/{self.patrol_id}/checkins"
            answer = self._until_acknowledged("checkin", self.volunteer, path, {"items": items})
            if answer is not None:
                outcomes = {item["outcome"] for item in answer["items"]}
                assert outcomes <= {"accepted", "duplicate"}, answer
                with self.lock:
                    self.checkins.extend(item["client_id"] for item in items)

    def _tips(self) -> None:
        while not self.stop.is_set():
            body = {
                "category": "theft",
                "description": "电动车被盗 (fleet test)",
                "location": {"lon": LON, "lat": LAT},
            }
            answer = self._until_acknowledged("tip", self.volunteer, "/api/v1/tips", body)
            if answer is not None:
                with self.lock:
                    self.tips.append(answer["id"])
            time.sleep(0.05)

    def _tasks(self) -> None:
        while not self.stop.is_set():
            ends = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
            body = {
                "title": "巡逻 (fleet test)",
                "kind": "patrol",
                "location": {"lon": LON, "lat": LAT},
                "radius_m": 1000,
                "ends_at": ends,
                "needed": 1,
                "targeting": {"mode": "radius", "widen_after_s": 0},
            }
            answer = self._until_acknowledged("task", self.staff, "/api/v1/tasks", body)
            if answer is not None:
                with self.lock:
                    self.tasks.append(answer["id"])
            time.sleep(0.3)

    def _reads(self) -> None:
        while not self.stop.is_set():
            status, _, headers = self.staff.call("GET", "/api/v1/grid/tips", timeout=10)
            source = headers.get("Qunfang-Read-Source", "") if headers else ""
            with self.lock:
                self.reads.append((time.monotonic(), status, source))
            time.sleep(0.1)

    def start(self) -> None:
        workers = [self._checkins, self._checkins, self._tips, self._tasks, self._reads]
        self.threads = [threading.Thread(target=w, daemon=True) for w in workers]
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stopped_at = time.monotonic()
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=90)

    def errors_between(self, start: float, end: float) -> dict[str, int]:
        with self.lock:
            return dict(Counter(f"{k} {s}" for t, k, s in self.errors if start <= t < end))


def _rate(client: Client, method: str, path: str, body_of, seconds: float, threads: int = 8):
    """Requests/s answered 2xx by `threads` clients in a loop for `seconds`."""
    done, failed = [0] * threads, [0] * threads
    deadline = time.monotonic() + seconds

    def loop(i: int) -> None:
        while time.monotonic() < deadline:
            status, _, _ = client.call(method, path, body_of())
            if 200 <= status < 300:
                done[i] += 1
            else:
                failed[i] += 1

    pool = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return round(sum(done) / seconds, 1), sum(failed)


def test_throughput_one_node_and_two(fleet):
    staff = _login(fleet.base, STAFF)
    volunteer = _login(fleet.base, VOLUNTEER)
    patrol = _new_patrol(volunteer)
    checkins = f"/api/v1/patrols/{patrol['id']}/checkins"

    def batch():
        return {
            "items": [
                {
                    "client_id": str(uuid.uuid4()),
                    "recorded_at": _now(),
                    "location": {"lon": LON, "lat": LAT, "accuracy_m": 8},
                }
            ]
        }

    # Short windows, one node and two in turn, so that the machine's other load (it drifts)
    # falls on both alike; the ratio is taken round by round.
    runs: dict[str, list] = {"1_node": [], "2_node": []}
    for _ in range(ROUNDS):
        for nodes in (1, 2):
            state = "maint" if nodes == 1 else "ready"
            fleet.haproxy(f"set server app_nodes/web2 state {state}")
            time.sleep(1)
            reads = _rate(staff, "GET", "/api/v1/grid/tips", lambda: None, MEASURE_S)
            writes = _rate(volunteer, "POST", checkins, batch, MEASURE_S)
            runs[f"{nodes}_node"].append({"grid_tips_rps": reads, "checkin_rps": writes})
    figures = {"cpus": os.cpu_count(), "load_avg": os.getloadavg(), **runs}
    for measure in ("grid_tips_rps", "checkin_rps"):
        one = [run[measure][0] for run in runs["1_node"]]
        two = [run[measure][0] for run in runs["2_node"]]
        figures[f"{measure}_median_1_node"] = statistics.median(one)
        figures[f"{measure}_median_2_node"] = statistics.median(two)
        figures[f"{measure}_median_ratio_2_over_1"] = round(
            statistics.median(t / o for t, o in zip(two, one, strict=True)), 2
        )
    print("fleet throughput:", json.dumps(figures))
    (FLEET / "throughput.json").write_text(json.dumps(figures))
    for run in runs["1_node"] + runs["2_node"]:
        assert run["grid_tips_rps"][0] > 0 and run["checkin_rps"][0] > 0
        assert run["grid_tips_rps"][1] == 0 and run["checkin_rps"][1] == 0


def _jobs(engine: sa.Engine, task_ids: list[str]) -> Counter:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT status, count(*) FROM procrastinate_jobs "
                "WHERE task_name = 'app.tasks.service.fan_out_task' "
                "AND args->>'task_id' = ANY(:ids) GROUP BY status"
            ),
            {"ids": task_ids},
        ).all()
    return Counter({status: n for status, n in rows})


def _defer_blocked_job(fleet: Fleet, n: int) -> int:
    """A job deferred the way requests defer them (app.core.jobs.defer, committed) that waits on
    clue_batches: fail_orphaned_batches."""
    from app import create_app
    from app.config import Config
    from app.core import jobs as jobs_module
    from app.exports.jobs import fail_orphaned_batches
    from app.extensions import db

    direct = (PROJECT_ROOT / "var" / "pg" / "fleet.app.url").read_text().strip()
    app = create_app(Config.from_env(SQLALCHEMY_DATABASE_URI=direct, ENV="testing", TESTING=True))
    with app.app_context():
        job_id = jobs_module.defer(fail_orphaned_batches, timestamp=int(time.time()) * 10 + n)
        db.session.commit()
        db.engine.dispose()
    return job_id


def _statuses(engine: sa.Engine, job_ids: list[int]) -> dict[int, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, status::text, attempts FROM procrastinate_jobs WHERE id = ANY(:ids)"
            ),
            {"ids": job_ids},
        ).all()
    return {row.id: row.status for row in rows}


def test_killing_a_node_a_worker_and_the_replica_under_load_loses_nothing(fleet):
    staff = _login(fleet.base, STAFF)
    volunteer = _login(fleet.base, VOLUNTEER)
    patrol = _new_patrol(volunteer)
    load = Load(volunteer, staff, patrol["id"])
    figures: dict[str, object] = {}
    engine = sa.create_engine(fleet.owner_url, poolclass=sa.pool.NullPool)
    load.start()
    try:
        time.sleep(4)

        # 1. One app node dies (the whole gunicorn, SIGKILL), then comes back.
        killed = time.monotonic()
        fleet.kill("web1")
        time.sleep(FAULT_S)
        restarted = time.monotonic()
        _script("fleet.sh", "start", env=fleet.env)
        back = wait_until(lambda: fleet.server_up("web1"), timeout=60, interval=0.2)
        figures["node_killed"] = {
            "client_errors": load.errors_between(killed, time.monotonic()),
            "seconds_to_serve_again_after_restart": round(time.monotonic() - restarted, 2),
        }
        assert back is not None, "web1 did not come back in haproxy"

        # 2. One worker dies (SIGKILL) in the middle of a job, then comes back. Each worker is
        # given a job that waits on a lock the test holds (a table the load does not touch), so
        # the killed one dies holding it; the task fan-outs queue up behind them meanwhile.
        blocked_jobs: list[int] = []
        with engine.connect() as blocker:
            held = blocker.begin()
            blocker.execute(sa.text("LOCK TABLE clue_batches IN ACCESS EXCLUSIVE MODE"))
            blocked_jobs = [_defer_blocked_job(fleet, n) for n in range(2)]
            both_running = wait_until(
                lambda: set(_statuses(engine, blocked_jobs).values()) == {"doing"}, timeout=30
            )
            killed = time.monotonic()
            fleet.kill("worker1")
            time.sleep(FAULT_S)
            held.rollback()
        restarted = time.monotonic()
        _script("fleet.sh", "start", env=fleet.env)
        figures["worker_killed"] = {
            "both_workers_were_inside_a_job": both_running is not None,
            "client_errors": load.errors_between(killed, time.monotonic()),
            "seconds_to_restart": round(time.monotonic() - restarted, 2),
        }

        # 3. The replica stops: heavy reads fall back to the primary; then it comes back.
        time.sleep(2)
        stopped = time.monotonic()
        _script("db.sh", "stop", "fleet-replica", env=fleet.env)
        down_from = time.monotonic()
        time.sleep(FAULT_S)
        down_to = time.monotonic()
        _script("db.sh", "replica", "fleet", env=fleet.env)
        restarted = time.monotonic()
        replica_back = wait_until(
            lambda: any(t > restarted and src == "replica" for t, _, src in load.reads[-3:]),
            timeout=60,
            interval=0.2,
        )
        figures["replica_stopped"] = {
            "client_errors": load.errors_between(stopped, time.monotonic()),
            "reads_while_down": dict(
                Counter(f"{s} {src}" for t, s, src in load.reads if down_from + 1 <= t < down_to)
            ),
            "seconds_to_read_replica_again_after_restart": (
                round(replica_back, 2) if replica_back is not None else None
            ),
        }
        time.sleep(3)
    finally:
        load.finish()

    # Every job deferred finishes (the killed worker's after the stalled-job check).
    jobs_done = wait_until(
        lambda: set(_jobs(engine, load.tasks)) <= {"succeeded"}, timeout=90, interval=0.5
    )
    jobs = _jobs(engine, load.tasks)
    blocked_done = wait_until(
        lambda: set(_statuses(engine, blocked_jobs).values()) == {"succeeded"}, timeout=60
    )
    with engine.connect() as conn:
        blocked_attempts = (
            conn.execute(
                sa.text("SELECT attempts FROM procrastinate_jobs WHERE id = ANY(:ids) ORDER BY id"),
                {"ids": blocked_jobs},
            )
            .scalars()
            .all()
        )
    with engine.connect() as conn:
        stored_checkins = set(
            conn.execute(
                sa.text("SELECT client_id::text FROM checkins WHERE patrol_id = :p"),
                {"p": patrol["id"]},
            ).scalars()
        )
        stored_tips = set(
            conn.execute(
                sa.text("SELECT id::text FROM tips WHERE id::text = ANY(:ids)"), {"ids": load.tips}
            ).scalars()
        )
        stored_tasks = set(
            conn.execute(
                sa.text("SELECT id::text FROM tasks WHERE id::text = ANY(:ids)"),
                {"ids": load.tasks},
            ).scalars()
        )
        retried = conn.execute(
            sa.text(
                "SELECT count(*) FROM procrastinate_jobs WHERE attempts > 1 "
                "AND args->>'task_id' = ANY(:ids)"
            ),
            {"ids": load.tasks},
        ).scalar()
    engine.dispose()
    lost = {
        "checkins": len(set(load.checkins) - stored_checkins),
        "tips": len(set(load.tips) - stored_tips),
        "tasks": len(set(load.tasks) - stored_tasks),
    }
    figures["acknowledged"] = {
        "checkins": len(load.checkins),
        "tips": len(load.tips),
        "tasks": len(load.tasks),
    }
    figures["lost"] = lost
    figures["jobs"] = {**dict(jobs), "retried": retried}
    figures["jobs_held_by_the_workers"] = {
        "statuses": sorted(_statuses(engine, blocked_jobs).values()),
        "attempts": blocked_attempts,
    }
    figures["failed_tries_total"] = len(load.errors)
    good_reads = [s for _, s, _ in load.reads if s == 200]
    figures["reads"] = {"total": len(load.reads), "ok": len(good_reads)}
    print("fleet faults:", json.dumps(figures, ensure_ascii=False))
    (FLEET / "faults.json").write_text(json.dumps(figures, ensure_ascii=False))

    assert lost == {"checkins": 0, "tips": 0, "tasks": 0}
    assert min(len(load.checkins), len(load.tips), len(load.tasks)) > 0
    assert jobs_done is not None, f"jobs not finished: {jobs}"
    assert figures["worker_killed"]["both_workers_were_inside_a_job"]
    assert blocked_done is not None, figures["jobs_held_by_the_workers"]
    assert sum(jobs.values()) == len(load.tasks)
    while_down = figures["replica_stopped"]["reads_while_down"]
    assert while_down and set(while_down) == {"200 primary"}, while_down
    assert figures["replica_stopped"]["seconds_to_read_replica_again_after_restart"] is not None
