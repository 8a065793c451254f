"""Who looked at a person's data (PIPL Art. 44–45), answered from the audit trail.

A read counts when someone else read the person's patrol track, the reporter details of one of
their named tips, or changed or verified their profile. The answer names the role the reader
acted in, never the reader: the audit trail keeps who, the person learns which kind of staff.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Select, String, and_, any_, case, cast, exists, or_, select
from sqlalchemy.dialects.postgresql import array

from app.core.audit import AuditEvent
from app.tips.models import Tip

TRACK, POSITION, REPORTER_DETAILS, PROFILE = "track", "position", "reporter_details", "profile"
_PROFILE_ACTIONS = ("user.updated", "user.verified")


def access_log_query(person_id: uuid.UUID) -> Select:
    """Audit events of others' reads of the person's data, newest first, as rows of
    `at, role, what, purpose, object_type, object_id`."""
    me = str(person_id)
    track = and_(
        AuditEvent.action.in_(("patrol.read", "patrol.position_read")),
        AuditEvent.details["volunteer_id"].astext == me,
    )
    reporter = and_(
        AuditEvent.action == "tip.reporter_viewed",
        exists().where(
            Tip.reporter_id == person_id, cast(Tip.id, String) == any_(AuditEvent.object_ids)
        ),
    )
    profile = and_(
        AuditEvent.action.in_(_PROFILE_ACTIONS),
        AuditEvent.object_type == "user",
        AuditEvent.object_ids.contains(array([me])),
    )
    what = case(
        (AuditEvent.action == "patrol.read", TRACK),
        (AuditEvent.action == "patrol.position_read", POSITION),
        (AuditEvent.action == "tip.reporter_viewed", REPORTER_DETAILS),
        else_=PROFILE,
    )
    return (
        select(
            AuditEvent.at.label("at"),
            AuditEvent.actor_role.label("role"),
            what.label("what"),
            AuditEvent.purpose.label("purpose"),
            AuditEvent.object_type.label("object_type"),
            AuditEvent.object_ids[1].label("object_id"),
        )
        # The person's own acts are not "access by others"; an operator's CLI (no actor) is.
        .where(AuditEvent.actor_id.is_distinct_from(person_id))
        .where(or_(track, reporter, profile))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    )
