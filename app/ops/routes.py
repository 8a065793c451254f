"""`/healthz`: the process answers. `/readyz`: the database answers and its schema is current.

The readiness check does not use the request's pooled connection: on a database that accepts
connections but never answers (a stopped or frozen server, a half-open network path) a pooled
connection's ping waits forever, and so would every probe, while a load balancer needs "not
ready" quickly. It opens a short-lived connection of its own under one deadline, READY_TIMEOUT_S
for connecting and querying together, and answers 503 when the deadline passes.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg
from flask import current_app
from flask.views import MethodView
from marshmallow import Schema, fields

from app.core.blueprint import Blueprint
from app.core.errors import problem
from app.core.i18n import _
from app.core.jobs import libpq_conninfo
from app.core.schema_version import expected_heads

logger = logging.getLogger(__name__)
blp = Blueprint("ops", __name__, description="Liveness and readiness probes")

# Connecting and reading the schema version together; the probe answers within this and a bit.
READY_TIMEOUT_S = 1.5


class HealthSchema(Schema):
    status = fields.String(metadata={"example": "ok"})


class ReadySchema(Schema):
    status = fields.String(metadata={"example": "ok"})
    migrations = fields.List(fields.String(), metadata={"description": "applied revision(s)"})


class _NotMigrated(Exception):
    """The database answers but holds no migrations yet."""


async def _applied_revisions(conninfo: str) -> set[str]:
    connection = await psycopg.AsyncConnection.connect(
        conninfo, connect_timeout=max(1, int(READY_TIMEOUT_S)), autocommit=True
    )
    try:
        try:
            cursor = await connection.execute("SELECT version_num FROM alembic_version")
        except psycopg.errors.UndefinedTable as exc:
            raise _NotMigrated from exc
        return {row[0] for row in await cursor.fetchall()}
    finally:
        await connection.close()


def applied_revisions(database_url: str) -> set[str]:
    """The revisions the database says it has; raises TimeoutError or psycopg.Error when it
    does not answer in READY_TIMEOUT_S."""
    return asyncio.run(
        asyncio.wait_for(_applied_revisions(libpq_conninfo(database_url)), READY_TIMEOUT_S)
    )


@blp.route("/healthz")
class Health(MethodView):
    @blp.public
    @blp.response(200, HealthSchema)
    def get(self):
        """The process is alive (no dependency is checked)."""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.public
    @blp.response(200, ReadySchema)
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    def get(self):
        """Ready for traffic: the database answers in time and its migrations are at head."""
        try:
            applied = applied_revisions(current_app.config["SQLALCHEMY_DATABASE_URI"])
        except _NotMigrated:
            applied = set()
        except (TimeoutError, psycopg.Error) as exc:
            logger.warning("database unavailable", extra={"reason": type(exc).__name__})
            return problem(
                503,
                slug="database-unavailable",
                detail=_("The database is not reachable; try again shortly."),
                headers={"Retry-After": "5"},
            )
        if applied != expected_heads(current_app):
            return problem(
                503,
                slug="migrations-pending",
                detail=_("The database schema is behind the migrations; run `flask db upgrade`."),
                headers={"Retry-After": "30"},
            )
        return {"status": "ok", "migrations": sorted(applied)}
