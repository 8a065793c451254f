"""`/healthz`: the process answers. `/readyz`: the database answers and its schema is current."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from marshmallow import Schema, fields
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from app.core.blueprint import Blueprint
from app.core.errors import problem
from app.core.schema_version import expected_heads
from app.extensions import db

blp = Blueprint("ops", __name__, description="Liveness and readiness probes")


class HealthSchema(Schema):
    status = fields.String(metadata={"example": "ok"})


class ReadySchema(Schema):
    status = fields.String(metadata={"example": "ok"})
    migrations = fields.List(fields.String(), metadata={"description": "applied revision(s)"})


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
        """Ready for traffic: the database answers and its migrations are at head."""
        try:
            applied = set(
                db.session.execute(text("SELECT version_num FROM alembic_version")).scalars()
            )
        except ProgrammingError:  # no alembic_version table: nothing migrated yet
            db.session.rollback()
            applied = set()
        if applied != expected_heads(current_app):
            return problem(
                503,
                slug="migrations-pending",
                detail="The database schema is behind the migrations; run `flask db upgrade`.",
                headers={"Retry-After": "30"},
            )
        return {"status": "ok", "migrations": sorted(applied)}
