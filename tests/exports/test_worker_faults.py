"""Clue-batch builds under faults, on committed data with real job workers: a worker killed with
SIGKILL in the middle of a build, the builder's database connection dropped, a build that
cannot succeed, a batch whose builds keep dying.

A killed worker's job stays `doing`; the worker's stalled-job retry (app/core/jobs.py) puts it
back in the queue. Here that step is done with procrastinate's own API, the way that retry does
it (`get_stalled_jobs`, then `retry_job`), so these tests are about the job being safe to run
again, not about how stalls are noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import hashlib
import io
import os
import signal
import subprocess
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import procrastinate
import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token
from procrastinate.jobs import Status

from app.config import PROJECT_ROOT
from app.core import jobs as jobs_module
from app.core.jobs import libpq_conninfo
from app.exports import jobs, signing
from app.exports.files import TIMEZONE
from app.storage.local import LocalStore
from tests import encrypted_rows
from tests.conftest import make_app
from tests.core.test_private_files import too_open

ROWS = 10_000  # progress is reported every 5,000 rows: a build is seen in its middle
TASK = "app.exports.service.generate_batch"
SUBDISTRICT, COMMUNITY = "110105001000", "110105001024"
DAY = dt.date(2026, 6, 1)  # each batch of a test takes the tips of a day of its own
FLASK = str(PROJECT_ROOT / ".venv" / "bin" / "flask")


def _wait_for(condition, timeout: float, what: str, poll: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def faults(app, database_url, tmp_path, monkeypatch):
    """A liaison of 建外 with a token, a way to make a committed batch of ROWS anonymous tips,
    workers (in-process or as `flask jobs worker` processes) on a private EXPORT_ROOT; all of
    it removed afterwards (the audit trail stays: it is append-only)."""
    # Freezing ROWS tips is four statements of about 0.4 s each here; with several suites on the
    # two shared CPUs one of them has outlasted the request path's 15 s (a 503 before any worker
    # started). These tests are about the worker's faults, not that bound: give it room.
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_S", "120")
    export_root, media_root = tmp_path / "exports", tmp_path / "media"
    # The local backend whatever the run's (QF_TEST_STORAGE): these tests look at the folders.
    app = make_app(
        database_url,
        EXPORT_ROOT=str(export_root),
        MEDIA_ROOT=str(media_root),
        STORAGE_BACKEND="local",
    )
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    liaison, session_id, prefix = uuid.uuid4(), uuid.uuid4(), uuid.uuid4().hex[:6]
    with engine.begin() as conn:
        path = conn.execute(
            sa.text("SELECT district_id, subdistrict_id, community_id FROM areas WHERE code = :c"),
            {"c": COMMUNITY},
        ).one()
        encrypted_rows.insert_user(
            conn,
            id=liaison,
            phone=f"165{uuid.uuid4().int % 10**8:08d}",
            name="故障测试联络员",
            roles=["police_liaison"],
            status="active",
        )
        conn.execute(
            sa.text("INSERT INTO user_areas (user_id, area_id) VALUES (:u, :a)"),
            {"u": liaison, "a": path.subdistrict_id},
        )
        conn.execute(
            sa.text("INSERT INTO auth_sessions (id, user_id, created_at) VALUES (:s, :u, now())"),
            {"s": session_id, "u": liaison},
        )
    with app.app_context():
        token = create_access_token(
            identity=str(liaison), additional_claims={"sid": str(session_id)}
        )
    bearer = {"Authorization": f"Bearer {token}"}
    workers: list[subprocess.Popen] = []
    made: list[str] = []

    def make_batch(rows: int = ROWS) -> str:
        """`rows` committed anonymous tips of a day, frozen into a batch by the API."""
        day = DAY + dt.timedelta(days=len(made))
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO tips (id, code, category_code, description, geom, priority, "
                    "anonymous, district_id, subdistrict_id, community_id, created_at) "
                    "SELECT gen_random_uuid(), :prefix || lpad(g::text, 8, '0'), "
                    "'environment_sanitation', '故障测试线索 ' || g, "
                    "ST_SetSRID(ST_MakePoint(116.4553 + g * 1e-8, 39.9096), 4326), 'normal', "
                    "true, :d, :s, :c, "
                    "CAST(:day AS timestamptz) + interval '1 hour' + g * interval '1 second' "
                    "FROM generate_series(1, :rows) AS g"
                ),
                {
                    "prefix": f"F{prefix}{len(made)}",
                    "day": f"{day.isoformat()}T00:00:00+08:00",
                    "rows": rows,
                    "d": path.district_id,
                    "s": path.subdistrict_id,
                    "c": path.community_id,
                },
            )
        body = {
            "filters": {
                "from": f"{day.isoformat()}T00:00:00+08:00",
                "to": f"{(day + dt.timedelta(days=1)).isoformat()}T00:00:00+08:00",
                "categories": ["environment_sanitation"],
            },
            "purpose": "故障演练：核查环境卫生线索",
            "case_reference": f"演练-{prefix}",
        }
        created = app.test_client().post(
            "/api/v1/clue-batches",
            json=body,
            headers={**bearer, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert created.status_code == 201, created.json
        assert created.json["row_count"] == rows
        made.append(created.json["id"])
        return created.json["id"]

    def start_worker(*extra: str) -> subprocess.Popen:
        """`flask --app wsgi jobs worker --queue exports` as its own process."""
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "EXPORT_ROOT": str(export_root),
            "MEDIA_ROOT": str(media_root),
            "STORAGE_BACKEND": "local",
            "LOG_LEVEL": "WARNING",
        }
        command = [FLASK, "--app", "wsgi", "jobs", "worker", "--queue", "exports", *extra]
        with open(tmp_path / f"worker-{len(workers)}.log", "wb") as log:
            process = subprocess.Popen(  # noqa: S603 - our own command line
                command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        workers.append(process)
        return process

    def batch(batch_id: str) -> sa.Row:
        with engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT * FROM clue_batches WHERE id = :id"), {"id": batch_id}
            ).one()

    def job(batch_id: str) -> sa.Row:
        with engine.connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT id, status, attempts FROM procrastinate_jobs "
                    "WHERE task_name = :t AND args->>'batch_id' = :id"
                ),
                {"t": TASK, "id": batch_id},
            ).one()

    def events(job_id: int) -> list[str]:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text("SELECT type FROM procrastinate_events WHERE job_id = :j ORDER BY id"),
                    {"j": job_id},
                ).scalars()
            )

    def worker_log() -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(tmp_path.glob("worker-*.log"))
        )

    try:
        yield SimpleNamespace(
            app=app,
            engine=engine,
            database_url=database_url,
            export_root=export_root,
            media_root=media_root,
            make_batch=make_batch,
            start_worker=start_worker,
            batch=batch,
            job=job,
            events=events,
            worker_log=worker_log,
        )
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        with engine.begin() as conn:
            for statement in (
                "DELETE FROM procrastinate_jobs",
                "DELETE FROM procrastinate_workers",
                "DELETE FROM media WHERE tip_id IN (SELECT tip_id FROM clue_batch_items "
                "WHERE batch_id = ANY(CAST(:b AS uuid[])))",
                "DELETE FROM clue_batches WHERE created_by = :u",
                "DELETE FROM tip_events WHERE tip_id IN "
                "(SELECT id FROM tips WHERE code LIKE :codes)",
                "DELETE FROM tips WHERE code LIKE :codes",
                "DELETE FROM auth_sessions WHERE user_id = :u",
                "DELETE FROM user_areas WHERE user_id = :u",
                "DELETE FROM users WHERE id = :u",
            ):
                conn.execute(sa.text(statement), {"u": liaison, "b": made, "codes": f"F{prefix}%"})
        engine.dispose()
        with app.app_context():
            from app.extensions import db

            db.engine.dispose()


def _requeue_stalled(database_url: str) -> list[int]:
    """What the worker's stalled-job retry does: jobs of workers whose heartbeat stopped go
    back to `todo`, one attempt more."""

    async def requeue() -> list[int]:
        queue = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=libpq_conninfo(database_url))
        )
        async with queue.open_async():
            stalled = await queue.job_manager.get_stalled_jobs(seconds_since_heartbeat=0)
            for job in stalled:
                await queue.job_manager.retry_job(job)
            return [job.id for job in stalled]

    return asyncio.run(requeue())


def _check_ready(faults, batch_id: str, rows: int = ROWS) -> None:
    """Ready, complete, signed, private, with nothing half-made left."""
    row = faults.batch(batch_id)
    assert (row.status, row.percent, row.error) == ("ready", 100, None)
    folder = faults.export_root / batch_id
    assert sorted(p.name for p in faults.export_root.iterdir()) == [batch_id]  # no .partial
    assert sorted(p.name for p in folder.iterdir()) == [
        "batch.zip",
        "manifest.json",
        "tips.csv",
        "tips.geojson",
    ]
    listed = {entry["name"]: entry for entry in row.files}
    for name, entry in listed.items():
        data = (folder / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (
            entry["size"],
            entry["sha256"],
        )
    with faults.app.app_context():
        key = signing.signing_key_from_seed(faults.app.config["CLUE_SIGNING_SECRET"])
        public_key = signing.public_key_info(key)["public_key"]
    manifest = signing.verify_zip(folder / "batch.zip", public_key)
    assert manifest["digest"] == row.digest and manifest["batch"]["row_count"] == rows
    text = (folder / "tips.csv").read_bytes().decode("utf-8-sig")
    assert len(list(csv.DictReader(io.StringIO(text)))) == rows
    created = row.created_at.astimezone(TIMEZONE)
    with zipfile.ZipFile(folder / "batch.zip") as archive:  # dated by the batch (2 s steps)
        assert {info.date_time for info in archive.infolist()} == {
            (*created.timetuple()[:5], created.second - created.second % 2)
        }
    assert too_open(faults.export_root) == {}


def test_a_worker_killed_mid_build_leaves_a_job_that_a_new_worker_finishes(faults):
    batch_id = faults.make_batch()
    job_id = faults.job(batch_id).id
    first = faults.start_worker()
    _wait_for(lambda: faults.batch(batch_id).percent > 0, 120, "the build to start")
    # Hold the batch's row: the build stops at its next progress report, in its middle.
    with faults.engine.connect() as gate:
        gate.execute(
            sa.text("SELECT 1 FROM clue_batches WHERE id = :id FOR UPDATE"), {"id": batch_id}
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        left = sorted(p.name for p in faults.export_root.iterdir())
        gate.rollback()
    assert left, "the killed build left files behind"
    assert too_open(faults.export_root) == {}, "files are private while they are written"
    row = faults.batch(batch_id)
    assert row.status == "running" and 0 < row.percent < 100
    assert faults.job(batch_id).status == "doing"

    assert _requeue_stalled(faults.database_url) == [job_id]
    second = faults.start_worker("--once")
    assert second.wait(timeout=300) == 0, faults.worker_log()

    _check_ready(faults, batch_id)
    job = faults.job(batch_id)
    assert (job.status, job.attempts) == ("succeeded", 2)  # the killed run and this one


def test_a_dropped_database_connection_is_retried_and_the_build_starts_over(faults):
    batch_id = faults.make_batch()
    job_id = faults.job(batch_id).id
    key = int.from_bytes(uuid.UUID(batch_id).bytes[:4], "big")  # as pg_locks shows it
    faults.start_worker()
    _wait_for(lambda: faults.batch(batch_id).percent > 0, 120, "the build to start")
    with faults.engine.connect() as gate:
        gate.execute(
            sa.text("SELECT 1 FROM clue_batches WHERE id = :id FOR UPDATE"), {"id": batch_id}
        )
        # The builder's connection is the one holding the batch's build lock.
        builder = gate.execute(
            sa.text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid::bigint = :ns AND objid::bigint = :key AND objsubid = 2"
            ),
            {"ns": 0x71666231, "key": key},
        ).scalar_one()
        gate.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": builder})
        gate.rollback()

    _wait_for(lambda: faults.batch(batch_id).status == "ready", 120, "the retried build", 0.2)
    _check_ready(faults, batch_id)
    job = faults.job(batch_id)
    assert (job.status, job.attempts) == ("succeeded", 2), faults.worker_log()
    assert faults.events(job_id).count("deferred_for_retry") == 1


def test_a_build_that_cannot_succeed_is_failed_with_its_reason_and_leaves_no_files(faults):
    batch_id = faults.make_batch(rows=3)
    # A photo of one of its tips whose file is gone (a disk restored from an old backup, say).
    with faults.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO media (id, tip_id, content_type, width, height, byte_size, sha256, "
                "storage_key, thumbnail_key) SELECT gen_random_uuid(), tip_id, 'image/jpeg', 1, 1, "
                "1, repeat('0', 64), 'aa/bb/missing-full.jpg', 'aa/bb/missing-thumb.jpg' "
                "FROM clue_batch_items WHERE batch_id = :b AND position = 2"
            ),
            {"b": batch_id},
        )
    # What a run that died after moving its folder into place left behind.
    stale = faults.export_root / batch_id
    stale.mkdir(parents=True)
    (stale / "tips.csv").write_bytes(b"tip_id,reporter_name\n")

    jobs_module.run_worker(
        faults.app, wait=False, queues=["exports"], install_signal_handlers=False
    )

    row = faults.batch(batch_id)
    assert row.status == "failed" and row.finished_at is not None
    assert row.error == "KeyError: the files could not be made."
    assert list(faults.export_root.iterdir()) == []
    job = faults.job(batch_id)
    assert (job.status, job.attempts) == ("failed", 1)  # not retried: it would fail again


def test_a_batch_whose_builds_keep_dying_is_given_up(faults):
    batch_id = faults.make_batch(rows=3)
    job_id = faults.job(batch_id).id

    async def die_repeatedly(times: int) -> None:
        # Each time: a worker takes the job and dies; the stalled-job retry puts it back.
        queue = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=libpq_conninfo(faults.database_url))
        )
        async with queue.open_async():
            for _ in range(times):
                worker_id = await queue.job_manager.register_worker()
                taken = await queue.job_manager.fetch_job(queues=["exports"], worker_id=worker_id)
                assert taken.id == job_id
                await queue.job_manager.retry_job(taken)

    asyncio.run(die_repeatedly(jobs.BUILD_ATTEMPTS))
    jobs_module.run_worker(
        faults.app, wait=False, queues=["exports"], install_signal_handlers=False
    )

    row = faults.batch(batch_id)
    assert row.status == "failed"
    assert row.error == (
        f"The build was interrupted {jobs.BUILD_ATTEMPTS} times (its worker stopped); gave up."
    )
    assert faults.job(batch_id).status == "succeeded"
    assert not faults.export_root.exists() or list(faults.export_root.iterdir()) == []


def test_a_batch_whose_job_ended_elsewhere_is_failed_by_the_sweep(faults, monkeypatch):
    orphan, waiting = faults.make_batch(rows=2), faults.make_batch(rows=2)
    orphan_job = faults.job(orphan).id

    async def worker_dies_for_good() -> None:
        # A worker takes the job and dies; the stalled-job retry gives up on it (its last
        # attempt): the job is failed without the batch hearing of it.
        queue = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=libpq_conninfo(faults.database_url))
        )
        async with queue.open_async():
            worker_id = await queue.job_manager.register_worker()
            taken = await queue.job_manager.fetch_job(queues=["exports"], worker_id=worker_id)
            assert taken.id == orphan_job
            await queue.job_manager.finish_job(taken, status=Status.FAILED, delete_job=False)

    asyncio.run(worker_dies_for_good())
    with faults.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE clue_batches SET status = 'running', percent = 33 WHERE id = :id"),
            {"id": orphan},
        )
    partial = faults.export_root / f".{orphan}.partial"
    partial.mkdir(parents=True)
    (partial / "tips.csv").write_bytes(b"half a file")

    monkeypatch.setattr(jobs_module, "_worker_app", faults.app)
    assert jobs.fail_orphaned_batches(timestamp=0) == 1

    row = faults.batch(orphan)
    assert (row.status, row.error) == (
        "failed",
        "The build job ended without finishing the batch; make it again.",
    )
    assert not partial.exists()
    assert faults.batch(waiting).status == "pending"  # its job is still queued


@contextlib.contextmanager
def progress_seen(faults, owner_database_url: str) -> Iterator[Callable[[str], list[int]]]:
    """Every write of a batch's percent, as committed, in order: a trigger the database's owner
    makes for the test (as a migration would), no code of ours changed."""
    owner = sa.create_engine(owner_database_url, poolclass=sa.pool.NullPool)
    with owner.begin() as conn:
        conn.execute(sa.text("CREATE TABLE progress_seen (n bigserial, batch uuid, percent int)"))
        conn.execute(
            sa.text(
                "CREATE FUNCTION progress_seen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "INSERT INTO progress_seen (batch, percent) VALUES (NEW.id, NEW.percent); "
                "RETURN NEW; END $$"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TRIGGER progress_seen AFTER UPDATE OF percent ON clue_batches "
                "FOR EACH ROW EXECUTE FUNCTION progress_seen()"
            )
        )
        conn.execute(sa.text(f"GRANT INSERT ON progress_seen TO {faults.engine.url.username}"))
        conn.execute(
            sa.text(f"GRANT USAGE ON SEQUENCE progress_seen_n_seq TO {faults.engine.url.username}")
        )

    def seen(batch_id: str) -> list[int]:
        with owner.connect() as conn:
            return list(
                conn.scalars(
                    sa.text("SELECT percent FROM progress_seen WHERE batch = :b ORDER BY n"),
                    {"b": batch_id},
                )
            )

    try:
        yield seen
    finally:
        with owner.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER progress_seen ON clue_batches"))
            conn.execute(sa.text("DROP FUNCTION progress_seen()"))
            conn.execute(sa.text("DROP TABLE progress_seen"))
        owner.dispose()


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # At 5,000 rows: 5,000 of 14,000 steps (the tips' pass is half the build), 35%.
        (7000, [0, 35, 50, 100]),
        # Every 5,000 rows exactly (25% at 5,000 of 20,000 steps); at the last row the tips'
        # pass and the files written both say 50.
        (10_000, [0, 25, 50, 50, 100]),
    ],
)
def test_a_builds_progress_rises_to_100_and_never_goes_back(
    faults, owner_database_url, rows, expected
):
    """Pollers see the build move: 0 when it starts; the tips' pass is the first half, reported
    every 5,000 rows; half when the files are written; 100 when ready."""
    batch_id = faults.make_batch(rows=rows)
    with progress_seen(faults, owner_database_url) as seen:
        jobs_module.run_worker(
            faults.app, wait=False, queues=["exports"], install_signal_handlers=False
        )
        percents = seen(batch_id)
    _check_ready(faults, batch_id, rows=rows)
    assert percents == expected


@pytest.mark.parametrize(
    ("per_tip", "after_the_files"),
    [
        # 9 photos: 50 + n * 49 // 9 after the n-th, each written once.
        (3, [55, 60, 66, 71, 77, 82, 88, 93, 99]),
        # 120 photos: each percent from 51 to 99 written once, not 120 writes.
        (40, list(range(51, 100))),
    ],
)
def test_the_photos_move_a_builds_progress_through_its_second_half(
    faults, owner_database_url, per_tip, after_the_files
):
    """A batch with many photos spends most of its build writing them into the ZIP: pollers
    see that pass move by the photos written, up to 99 (100 is the batch ready)."""
    batch_id = faults.make_batch(rows=3)
    store = LocalStore(faults.media_root)
    with faults.engine.begin() as conn:
        tips = conn.scalars(
            sa.text("SELECT tip_id FROM clue_batch_items WHERE batch_id = :b ORDER BY position"),
            {"b": batch_id},
        ).all()
        for tip_id in tips:
            for n in range(per_tip):
                photo = f"photo {n} of tip {tip_id}".encode()
                key = f"{uuid.uuid4().hex[:2]}/{uuid.uuid4()}.jpg"
                store.put(key, photo)
                conn.execute(
                    sa.text(
                        "INSERT INTO media (id, tip_id, content_type, width, height, byte_size, "
                        "sha256, storage_key, thumbnail_key) VALUES (gen_random_uuid(), :t, "
                        "'image/jpeg', 1, 1, :size, :sha, :key, :key)"
                    ),
                    {
                        "t": tip_id,
                        "size": len(photo),
                        "sha": hashlib.sha256(photo).hexdigest(),
                        "key": key,
                    },
                )
    with progress_seen(faults, owner_database_url) as seen:
        jobs_module.run_worker(
            faults.app, wait=False, queues=["exports"], install_signal_handlers=False
        )
        percents = seen(batch_id)
    _check_ready(faults, batch_id, rows=3)
    with zipfile.ZipFile(faults.export_root / batch_id / "batch.zip") as archive:
        photos = [name for name in archive.namelist() if name.startswith("photos/")]
    assert len(photos) == 3 * per_tip
    assert percents == [0, 50, *after_the_files, 100]
