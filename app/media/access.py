"""Who may see a photo besides its uploader: a rule of the object it is attached to.

A photo is attached to at most one object, through a column of its own (`Media.tip_id`,
`Media.task_id`). Media knows the columns, not the rules: the package owning each kind of object
registers its rule at app start (create_app), so media imports none of the packages built on it
(the layers in pyproject.toml). A column without a registered rule grants nobody.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy.orm import Session

from app.auth.models import User
from app.media.models import Media

# may_see(session, user, object_id): whether `user` may see the photos of that object.
PhotoRule = Callable[[Session, User, uuid.UUID], bool]

_rules: dict[str, PhotoRule] = {}


def register_owner(column: str, may_see: PhotoRule) -> None:
    """Photos whose `column` names an object are seen by whom `may_see` allows. Rules are asked
    in the order first registered; registering a column again (another app) replaces its rule."""
    if column not in Media.__table__.c:
        raise ValueError(f"media has no column {column!r}")
    _rules[column] = may_see


def granted_through(session: Session, user: User, media: Media) -> tuple[str, uuid.UUID] | None:
    """The attachment (column, object id) whose rule lets `user` see `media`, or None."""
    for column, may_see in _rules.items():
        object_id = getattr(media, column)
        if object_id is not None and may_see(session, user, object_id):
            return column, object_id
    return None
