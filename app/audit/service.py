"""Reading the audit trail: one query for the API (GET /api/v1/audit) and the staff console."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from app.core.audit import AuditEvent


def events_query(args: dict[str, Any]) -> Select:
    """Audit events, newest first, filtered by actor, action, object type and id, outcome and
    time (`from_` inclusive, `to` exclusive); `args` as AuditArgsSchema loads them."""
    query = select(AuditEvent)
    if args.get("actor_id") is not None:
        query = query.where(AuditEvent.actor_id == args["actor_id"])
    if args.get("action"):
        query = query.where(AuditEvent.action == args["action"])
    if args.get("object_type"):
        query = query.where(AuditEvent.object_type == args["object_type"])
    if args.get("object_id"):
        query = query.where(AuditEvent.object_ids.contains([args["object_id"]]))
    if args.get("outcome"):
        query = query.where(AuditEvent.outcome == args["outcome"])
    if args.get("from_") is not None:
        query = query.where(AuditEvent.at >= args["from_"])
    if args.get("to") is not None:
        query = query.where(AuditEvent.at < args["to"])
    return query.order_by(AuditEvent.id.desc())
