"""Jobs are called by name: a job queued (or a periodic run recorded) by one release is run by
the next, so a job that moves to another module keeps its name. And a worker knows only the
jobs its process imported: the application factory imports every module that has jobs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.config import PROJECT_ROOT

# name -> queue, for every job a worker must know.
JOBS = {
    "app.core.idempotency.prune_idempotency_records": "maintenance",
    "app.exports.service.fail_orphaned_batches": "maintenance",
    "app.exports.service.generate_batch": "exports",
    "app.media.service.expire_unattached_media": "maintenance",
    "app.patrols.checkpoints.judge_checkpoint_windows": "maintenance",
    "app.patrols.service.end_idle_patrols": "maintenance",
    "app.patrols.service.maintain_checkin_partitions": "maintenance",
    "app.privacy.jobs.build_data_archive": "exports",
    "app.privacy.jobs.delete_acknowledged_batch_files": "maintenance",
    "app.privacy.jobs.delete_closed_tip_photos": "maintenance",
    "app.privacy.jobs.delete_ended_sessions": "maintenance",
    "app.privacy.jobs.delete_inactive_devices": "maintenance",
    "app.privacy.jobs.delete_old_notifications": "maintenance",
    "app.privacy.jobs.erase_deleted_accounts": "maintenance",
    "app.privacy.jobs.expire_reporter_contacts": "maintenance",
    "app.privacy.jobs.prune_data_archives": "maintenance",
    "app.privacy.jobs.purge_audit_events": "maintenance",
    "app.stations.service.roll_open_periods": "maintenance",
    "app.storage.jobs.sweep_orphan_objects": "maintenance",
    "app.tasks.service.expire_duty_positions": "maintenance",
    "app.tasks.service.fan_out_task": "push",
    "notifications.fallback.sms_fallback": "push",
    "notifications.service.send_deliveries": "push",
}
# periodic id -> (job name, cron)
PERIODIC = {
    "prune_idempotency_records": ("app.core.idempotency.prune_idempotency_records", "17 * * * *"),
    "fail_orphaned_batches": ("app.exports.service.fail_orphaned_batches", "*/10 * * * *"),
    "expire_unattached_media": ("app.media.service.expire_unattached_media", "*/15 * * * *"),
    "judge_checkpoint_windows": (
        "app.patrols.checkpoints.judge_checkpoint_windows",
        "*/10 * * * *",
    ),
    "end_idle_patrols": ("app.patrols.service.end_idle_patrols", "*/30 * * * *"),
    "maintain_checkin_partitions": (
        "app.patrols.service.maintain_checkin_partitions",
        "41 3 * * *",
    ),
    "delete_acknowledged_batch_files": (
        "app.privacy.jobs.delete_acknowledged_batch_files",
        "55 2 * * *",
    ),
    "delete_closed_tip_photos": ("app.privacy.jobs.delete_closed_tip_photos", "35 * * * *"),
    "delete_ended_sessions": ("app.privacy.jobs.delete_ended_sessions", "45 2 * * *"),
    "delete_inactive_devices": ("app.privacy.jobs.delete_inactive_devices", "15 2 * * *"),
    "delete_old_notifications": ("app.privacy.jobs.delete_old_notifications", "25 2 * * *"),
    "erase_deleted_accounts": ("app.privacy.jobs.erase_deleted_accounts", "23 * * * *"),
    "expire_reporter_contacts": ("app.privacy.jobs.expire_reporter_contacts", "5 2 * * *"),
    "prune_data_archives": ("app.privacy.jobs.prune_data_archives", "47 4 * * *"),
    "purge_audit_events": ("app.privacy.jobs.purge_audit_events", "5 3 * * *"),
    "roll_station_open_periods": ("app.stations.service.roll_open_periods", "5 16 * * *"),
    "sweep_orphan_objects": ("app.storage.jobs.sweep_orphan_objects", "41 * * * *"),
    "expire_duty_positions": ("app.tasks.service.expire_duty_positions", "*/10 * * * *"),
}

# What a new process knows once it made the application, as `flask jobs worker` does.
_REGISTERED = """
import json, sys
from tests.conftest import make_app
from app.core.jobs import jobs

make_app(sys.argv[1])
names = {n: t.queue for n, t in jobs.tasks.items()}
periodic = jobs.periodic_registry.periodic_tasks.values()
print(json.dumps({
    "jobs": {n: q for n, q in names.items() if not n.startswith(("procrastinate.", "builtin:"))},
    "periodic": {p.periodic_id: [p.task.name, p.cron] for p in periodic},
}))
"""


@pytest.fixture(scope="module")
def registered(database_url) -> dict:
    run = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", _REGISTERED, database_url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_new_process_registers_every_job_under_its_first_name(registered):
    assert registered["jobs"] == JOBS


def test_a_new_process_registers_every_periodic_job_with_its_schedule(registered):
    assert {k: tuple(v) for k, v in registered["periodic"].items()} == PERIODIC
