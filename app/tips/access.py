"""Who may see a tip's photos: its named reporter, and staff (grid_staff and up) whose
jurisdiction covers it."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from app.auth.jurisdiction import jurisdiction_of
from app.auth.models import User
from app.core.auth import GRID_STAFF, has_any_role
from app.media import access as media_access
from app.tips.models import Tip


def may_see_tip_media(session: Session, user: User, tip_id: uuid.UUID) -> bool:
    tip = session.get(Tip, tip_id)
    if tip is None:
        return False
    if tip.reporter_id == user.id:
        return True
    # Police liaisons have areas too, but receive tips only through clue batches.
    return has_any_role(user.roles, [GRID_STAFF]) and jurisdiction_of(user).covers(tip.path_ids)


def register_photo_rule() -> None:
    """A tip's photos are seen by whom `may_see_tip_media` allows (asked by app/media/access.py);
    create_app calls this."""
    media_access.register_owner("tip_id", may_see_tip_media)
