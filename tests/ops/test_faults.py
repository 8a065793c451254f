"""Faults on a whole `make run` stack: scripts/serve.sh with its own PostgreSQL cluster and redis
(never the suite's), supervisord, gunicorn with two workers and a job worker, all real processes.

- kill -9 of the postmaster under check-in load: supervisord starts PostgreSQL again, no
  acknowledged check-in is lost, the API and the worker (the same processes: neither died) are
  healthy again within 15 s, and a job deferred after the restart runs;
- kill -9 of the job worker: supervisord starts a new one and the API never stops answering; the
  job the dead worker was running is found stalled (no heartbeat) and run again;
- a frozen (SIGSTOPped) database: /readyz answers 503 within 2 s, and 200 once it thaws.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.config import PROJECT_ROOT
from tests.ops.processes import VENV_BIN, base_environment, free_port, http, wait_until

RECOVERY_S = 15
PASSWORD = "Fault-Test-Passw0rd-2026"


class Stack:
    """A running `scripts/serve.sh` of instance `name`."""

    def __init__(self, name: str, base: str, env: dict[str, str], process: subprocess.Popen):
        self.name, self.base, self.env, self.process = name, base, env, process
        self.conf = PROJECT_ROOT / "var" / "run" / name / "supervisord.conf"

    def pid(self, program: str) -> int:
        out = subprocess.run(  # noqa: S603 - our own supervisorctl
            [str(VENV_BIN / "supervisorctl"), "-c", str(self.conf), "pid", program],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        return int(out) if out.isdigit() else 0

    def url(self, role: str = "app") -> str:
        name = f"{self.name}.app.url" if role == "app" else f"{self.name}.url"
        return (PROJECT_ROOT / "var" / "pg" / name).read_text().strip()

    def ready(self) -> bool:
        return http("GET", f"{self.base}/readyz", timeout=2)[0] == 200


def _script(*args: str, env: dict[str, str]) -> None:
    subprocess.run(  # noqa: S603 - our own scripts
        [str(PROJECT_ROOT / "scripts" / args[0]), *args[1:]],
        cwd=PROJECT_ROOT,
        env=env,
        check=False,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    name = f"fault-{uuid.uuid4().hex[:6]}"
    port = free_port()
    env = base_environment(
        QF_INSTANCE=name,
        PORT=str(port),
        QF_DEMO="0",
        WEB_CONCURRENCY="2",
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_KIB="1024",
        LOGIN_CLIENT_RATE_LIMIT="1000 per minute",
        # A dead worker is noticed after 6 s without a heartbeat (2 s apart).
        JOB_STALLED_AFTER_S="6",
    )
    log = tmp_path_factory.mktemp("stack") / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own launcher
            [str(PROJECT_ROOT / "scripts" / "serve.sh")],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Stack(name, f"http://127.0.0.1:{port}", env, process)
    try:
        started = wait_until(
            lambda: (running.ready() and running.pid("worker") > 0) or process.poll() is not None,
            timeout=300,
            interval=0.5,
        )
        assert started is not None and process.poll() is None, log.read_text()[-5000:]
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        _script("db.sh", "destroy", name, env=env)
        _script("redis.sh", "destroy", name, env=env)
        for folder in ("run", "log"):
            shutil.rmtree(PROJECT_ROOT / "var" / folder / name, ignore_errors=True)


@pytest.fixture(scope="module")
def volunteer_token(stack) -> str:
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    subprocess.run(  # noqa: S603 - our own flask command
        [
            str(VENV_BIN / "flask"),
            "--app",
            "wsgi",
            "users",
            "create",
            "--role",
            "volunteer",
            "--phone",
            phone,
            "--name",
            "故障测试",
            "--password",
            PASSWORD,
        ],
        cwd=PROJECT_ROOT,
        env={**stack.env, "DATABASE_URL": stack.url("app")},
        check=True,
        capture_output=True,
    )
    status, body = http(
        "POST", f"{stack.base}/api/v1/auth/login", {"phone": phone, "password": PASSWORD}
    )
    assert status == 200, body
    return body["access_token"]


def _authorized(token: str):
    def call(method: str, path: str, body: dict | None = None, timeout: float = 5):
        import urllib.error
        import urllib.request

        request = urllib.request.Request(  # noqa: S310 - loopback only
            path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, {}
        except (OSError, TimeoutError):
            return 0, {}

    return call


def _defer_job(stack: Stack) -> int:
    """A job deferred the way requests defer them (app.core.jobs.defer, committed)."""
    from app import create_app
    from app.config import Config
    from app.core import jobs as jobs_module
    from app.core.idempotency import prune_idempotency_records
    from app.extensions import db

    app = create_app(
        Config.from_env(SQLALCHEMY_DATABASE_URI=stack.url("app"), ENV="testing", TESTING=True)
    )
    with app.app_context():
        job_id = jobs_module.defer(prune_idempotency_records, timestamp=int(time.time()))
        db.session.commit()
        db.engine.dispose()
    return job_id


def _job_status(engine: sa.Engine, job_id: int) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT status FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
            ).scalar()
    except sa.exc.OperationalError:
        return None


def test_killing_the_postmaster_under_load_loses_no_acknowledged_write(stack, volunteer_token):
    call = _authorized(volunteer_token)
    started_at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    status, patrol = call(
        "POST", f"{stack.base}/api/v1/patrols", {"kind": "walk_along", "started_at": started_at}
    )
    assert status == 201, patrol
    checkins = f"{stack.base}/api/v1/patrols/{patrol['id']}/checkins"
    web_pid, worker_pid, postmaster = stack.pid("web"), stack.pid("worker"), stack.pid("postgres")
    assert web_pid and worker_pid and postmaster

    sent: list[str] = []
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop_load = threading.Event()

    def load() -> None:
        lon = 116.45
        while not stop_load.is_set():
            client_id = str(uuid.uuid4())
            item = {
                "client_id": client_id,
                "recorded_at": dt.datetime.now(dt.UTC).isoformat(),
                "location": {"lon": lon, "lat": 39.91, "accuracy_m": 8},
            }
            with lock:
                sent.append(client_id)
            status, body = call("POST", checkins, {"items": [item]}, timeout=10)
            outcome = (body.get("items") or [{}])[0].get("outcome") if status < 300 else None
            if status in (200, 201) and outcome in ("accepted", "duplicate"):
                with lock:
                    acknowledged.append(client_id)
            elif status != 0 and status < 500:
                raise AssertionError(f"unexpected answer {status} {body}")
            else:
                time.sleep(0.05)  # the API said 503 (or nothing): the phone tries again later
            lon += 0.00001

    threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    killed_at = time.monotonic()
    os.kill(postmaster, signal.SIGKILL)

    api_back = wait_until(stack.ready, timeout=RECOVERY_S + 30, interval=0.1)
    assert api_back is not None, "the API did not come back"
    restarted = stack.pid("postgres")
    time.sleep(3)  # writes go on after the restart
    stop_load.set()
    for thread in threads:
        thread.join(timeout=15)

    engine = sa.create_engine(stack.url("owner"), poolclass=sa.pool.NullPool)
    job_id = _defer_job(stack)
    job_ran = wait_until(
        lambda: _job_status(engine, job_id) == "succeeded", timeout=RECOVERY_S, interval=0.2
    )
    worker_back = time.monotonic() - killed_at
    with engine.connect() as conn:
        stored = set(
            conn.execute(
                sa.text("SELECT client_id::text FROM checkins WHERE patrol_id = :p"),
                {"p": patrol["id"]},
            ).scalars()
        )
        heartbeats = conn.execute(
            sa.text(
                "SELECT count(*) FROM procrastinate_workers "
                "WHERE last_heartbeat > now() - interval '10 seconds'"
            )
        ).scalar()
    engine.dispose()
    lost = [c for c in acknowledged if c not in stored]
    figures = {
        "sent": len(sent),
        "acknowledged": len(acknowledged),
        "stored": len(stored),
        "stored_of_acknowledged": len(acknowledged) - len(lost),
        "lost": len(lost),
        "seconds_to_api_ready": round(api_back, 2),
        "seconds_to_job_run_after_kill": round(worker_back, 2),
    }
    print("fault figures:", json.dumps(figures))
    assert restarted and restarted != postmaster, "supervisord did not start PostgreSQL again"
    assert lost == []
    assert len(acknowledged) > 0 and stored >= set(acknowledged)
    assert api_back <= RECOVERY_S
    assert job_ran is not None, "a job deferred after the restart did not run"
    assert worker_back <= RECOVERY_S + 3 + 5  # the 3 s of load after the API came back
    assert heartbeats >= 1
    # Neither the API nor the worker died: the worker reconnected by itself.
    assert (stack.pid("web"), stack.pid("worker")) == (web_pid, worker_pid)


def test_a_killed_worker_is_replaced_its_job_retried_and_the_api_stays_up(stack):
    owner = sa.create_engine(stack.url("owner"), poolclass=sa.pool.NullPool)
    worker_pid, web_pid = stack.pid("worker"), stack.pid("web")
    # The job blocks on a lock the test holds, so the worker dies in the middle of it.
    with owner.connect() as blocker:
        blocking = blocker.begin()
        blocker.execute(sa.text("LOCK TABLE idempotency_records IN ACCESS EXCLUSIVE MODE"))
        job_id = _defer_job(stack)
        assert wait_until(lambda: _job_status(owner, job_id) == "doing", timeout=RECOVERY_S)
        os.kill(worker_pid, signal.SIGKILL)
        answers = []
        replaced = wait_until(
            lambda: (
                answers.append(http("GET", f"{stack.base}/healthz", timeout=2)[0])
                or stack.pid("worker") not in (0, worker_pid)
            ),
            timeout=RECOVERY_S,
            interval=0.2,
        )
        blocking.rollback()
    # No heartbeat for 6 s: the dead worker's job is put back and run by the new worker.
    retried = wait_until(
        lambda: _job_status(owner, job_id) == "succeeded", timeout=45, interval=0.5
    )
    with owner.connect() as conn:
        attempts = conn.execute(
            sa.text("SELECT attempts FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
        ).scalar()
    owner.dispose()
    assert replaced is not None, "supervisord did not start a new worker"
    assert set(answers) == {200}, "the API stopped answering"
    assert stack.pid("web") == web_pid
    assert retried is not None, "the stalled job was not retried"
    assert attempts >= 1


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (read from /proc: no procps needed)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_readyz_answers_503_within_2_s_while_the_database_is_frozen(stack):
    postmaster = stack.pid("postgres")
    children = _children(postmaster)
    frozen = [postmaster, *children]
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        timings = []
        for _ in range(3):
            started = time.monotonic()
            status, body = http("GET", f"{stack.base}/readyz", timeout=10)
            timings.append(time.monotonic() - started)
            assert status == 503, body
        assert max(timings) < 2.0, timings
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    assert wait_until(stack.ready, timeout=RECOVERY_S) is not None


def test_stack_logs_stay_private(stack):
    """Run and log folders of the stack are not readable by others (0750 or stricter)."""
    for folder in ("run", "log"):
        path = Path(PROJECT_ROOT / "var" / folder / stack.name)
        assert path.stat().st_mode & 0o027 == 0, oct(path.stat().st_mode)
