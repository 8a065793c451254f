"""The job of the tasks package: a task's fan-out, one phase at a time."""

from __future__ import annotations

import uuid

from flask import current_app

from app.core.jobs import task
from app.extensions import db
from app.tasks import service


@task(queue="push", retry=5, name="app.tasks.service.fan_out_task")
def fan_out_task(task_id: str, phase: int) -> int:
    """Choose a task's recipients for one phase and push it to their phones."""
    settings = service.TaskSettings.from_config(current_app.config)
    return service.fan_out(db.session, uuid.UUID(task_id), phase, service._now(), settings)
