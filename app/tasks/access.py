"""Who may see the photos of a task's completions: staff (grid_staff and up) whose jurisdiction
covers the task (the volunteer who took them sees them as their uploader)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from app.auth.jurisdiction import jurisdiction_of
from app.auth.models import User
from app.core.auth import GRID_STAFF, has_any_role
from app.media import access as media_access
from app.tasks.models import Task


def may_see_task_media(session: Session, user: User, task_id: uuid.UUID) -> bool:
    task = session.get(Task, task_id)
    if task is None:
        return False
    return has_any_role(user.roles, [GRID_STAFF]) and jurisdiction_of(user).covers(task.path_ids)


def register_photo_rule() -> None:
    """A task's photos are seen by whom `may_see_task_media` allows (asked by app/media/access.py);
    create_app calls this."""
    media_access.register_owner("task_id", may_see_task_media)
