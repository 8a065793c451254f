"""Building a batch again: the same bytes, nothing stale left, and the retry policy of the job.
(Real workers killed mid-build: tests/exports/test_worker_faults.py.)"""

from __future__ import annotations

import datetime as dt
import io
import uuid
import zipfile
from pathlib import Path

import procrastinate
import psycopg
import pytest
from flask import current_app
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from app.exports import jobs, service
from app.exports.models import ClueBatch
from app.storage import export_store
from tests.exports import test_batches
from tests.exports.test_batches import _create, _post_tip

liaison, run_jobs = test_batches.liaison, test_batches.run_jobs  # the fixtures of those tests

CREATED = dt.datetime(2026, 11, 20, 2, 0, 0, tzinfo=dt.UTC)


def _snapshot(session, batch_id) -> dict:
    session.expire_all()
    batch = session.get(ClueBatch, uuid.UUID(batch_id))
    store = export_store()
    return {
        "status": batch.status,
        "files": batch.files,
        "signed": (batch.digest, batch.signature, batch.key_id),
        "bytes": {
            info.key: store.get(info.key) for info in store.list(service.batch_prefix(batch.id))
        },
    }


def test_building_again_after_a_crash_makes_the_same_bytes_and_leaves_nothing_stale(
    client, session, liaison, run_jobs
):
    _user, headers = liaison
    tips = [_post_tip(client)["id"] for _ in range(3)]
    batch_id = _create(client, headers, tip_ids=tips).json["id"]
    session.execute(
        text("UPDATE clue_batches SET created_at = :t WHERE id = :id"),
        {"t": CREATED, "id": batch_id},
    )
    session.commit()
    assert run_jobs(batch_id) == 3
    first = _snapshot(session, batch_id)
    assert set(first["bytes"]) == {f"{batch_id}/{name}" for name in service.DOWNLOADABLE}
    with zipfile.ZipFile(io.BytesIO(first["bytes"][f"{batch_id}/batch.zip"])) as archive:
        # Dated by the batch, not by the build: a later build makes the same archive.
        assert {info.date_time for info in archive.infolist()} == {(2026, 11, 20, 10, 0, 0)}

    # What a worker killed mid-build leaves: the batch `running`, a partial folder on its
    # host, and objects it had stored already.
    session.execute(
        text("UPDATE clue_batches SET status = 'running', percent = 33 WHERE id = :id"),
        {"id": batch_id},
    )
    session.commit()
    partial = Path(current_app.config["EXPORT_ROOT"]) / f".{batch_id}.partial"
    partial.mkdir()
    (partial / "tips.csv").write_bytes(b"half a file")
    export_store().put(f"{batch_id}/tips.csv", b"half a file")
    export_store().put(f"{batch_id}/stale.bin", b"from another build")

    assert run_jobs(batch_id) == 3
    again = _snapshot(session, batch_id)
    assert again == first and again["status"] == "ready"
    assert not partial.exists()


def test_ready_and_failed_batches_are_left_alone(client, session, liaison, run_jobs):
    _user, headers = liaison
    batch_id = _create(client, headers, tip_ids=[_post_tip(client)["id"]]).json["id"]
    assert run_jobs(batch_id) == 1
    assert run_jobs(batch_id) == 0  # a duplicate delivery of the job
    session.execute(
        text("UPDATE clue_batches SET status = 'failed' WHERE id = :id"), {"id": batch_id}
    )
    session.commit()
    assert run_jobs(batch_id) == 0


def _job(attempts: int) -> procrastinate.jobs.Job:
    return procrastinate.jobs.Job(
        id=1,
        queue="exports",
        lock=None,
        queueing_lock=None,
        task_name="app.exports.service.generate_batch",
        attempts=attempts,
    )


@pytest.mark.parametrize(
    "error",
    [
        sa_exc.OperationalError("SELECT 1", {}, psycopg.OperationalError("server closed")),
        sa_exc.InterfaceError("SELECT 1", {}, psycopg.InterfaceError("connection is closed")),
        psycopg.errors.DeadlockDetected("deadlock detected"),
        sa_exc.TimeoutError("QueuePool limit reached"),
    ],
)
def test_transient_database_errors_are_retried_with_growing_waits(error):
    strategy = jobs.generate_batch.retry_strategy
    waits = []
    for attempts in range(jobs.BUILD_ATTEMPTS):
        decision = strategy.get_retry_decision(exception=error, job=_job(attempts))
        if decision is None:
            break
        waits.append(round((decision.retry_at - dt.datetime.now(dt.UTC)).total_seconds()))
    assert waits == [2, 4, 8]  # then, at the fourth attempt, the batch is failed


@pytest.mark.parametrize("error", [KeyError("photo"), ValueError("bad date"), OSError("disk")])
def test_other_errors_are_not_retried(error):
    strategy = jobs.generate_batch.retry_strategy
    assert strategy.get_retry_decision(exception=error, job=_job(0)) is None
