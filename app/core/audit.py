"""The audit trail (ARCHITECTURE §6): who, in which role, did what to which objects, why, and
with what outcome. Append-only, and enforced by the database: triggers refuse UPDATE, DELETE and
TRUNCATE on `audit_events` for every role (migration 0005), so neither a bug nor a compromised
application process can rewrite history.

What goes in: account ids, roles, actions, object ids, a stated purpose, the request id. What
never goes in: passwords, tokens, phone numbers, addresses, user agents, anonymous tipsters'
anything.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from flask import g, has_request_context
from sqlalchemy import BigInteger, DateTime, Identity, Index, String, Text, Uuid, func, insert
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.core.auth import ADMIN, COMMUNITY_ADMIN, GRID_STAFF, POLICE_LIAISON, VOLUNTEER
from app.extensions import db

# The role an actor acted in, for the record: the strongest they hold.
_ROLE_ORDER = (ADMIN, COMMUNITY_ADMIN, POLICE_LIAISON, GRID_STAFF, VOLUNTEER)
OUTCOMES = ("success", "failure", "denied")


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_actor_at", "actor_id", "at"),
        Index("ix_audit_events_action_at", "action", "at"),
        Index("ix_audit_events_object_ids", "object_ids", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_role: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(50))
    object_type: Mapped[str | None] = mapped_column(String(30))
    object_ids: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    purpose: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(10), server_default="success")
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSONB, server_default="{}")


def role_of(roles: Iterable[str]) -> str | None:
    held = set(roles)
    return next((role for role in _ROLE_ORDER if role in held), None)


def _values(
    action: str,
    *,
    actor=None,
    object_type: str | None = None,
    object_ids: Iterable[Any] = (),
    purpose: str | None = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    return {
        "actor_id": actor.id if actor is not None else None,
        "actor_role": role_of(actor.roles) if actor is not None else None,
        "action": action,
        "object_type": object_type,
        "object_ids": [str(i) for i in object_ids],
        "purpose": purpose,
        "outcome": outcome,
        "request_id": g.get("request_id") if has_request_context() else None,
        "details": details or {},
    }


def record(session: Session, action: str, **kwargs: Any) -> None:
    """Record inside the current transaction: the event stands if and only if the work does."""
    session.execute(insert(AuditEvent).values(**_values(action, **kwargs)))


def record_now(action: str, **kwargs: Any) -> None:
    """Record in a transaction of its own, committed at once: for refusals and failures, whose
    request transaction is rolled back (a failed login must stay on record)."""
    with db.engine.begin() as connection:
        connection.execute(insert(AuditEvent).values(**_values(action, **kwargs)))
