"""A test-only blueprint that exercises the shared machinery (access rules, parsing, errors,
idempotency, rate limits) through real requests, before any domain endpoint exists."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, validate
from sqlalchemy import text

from app.core.blueprint import Blueprint
from app.core.errors import Conflict, problem
from app.extensions import db, limiter

blp = Blueprint("probe", __name__, url_prefix="/api/v1/probe", description="test only")


class ItemSchema(Schema):
    lon = fields.Float(required=True, validate=validate.Range(-180, 180))
    lat = fields.Float(required=True, validate=validate.Range(-90, 90))


class WriteSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 50))
    items = fields.List(fields.Nested(ItemSchema), load_default=list)


class WrittenSchema(Schema):
    id = fields.Integer()
    name = fields.String()


@blp.route("/writes")
class Writes(MethodView):
    @blp.role_required("volunteer")
    @blp.idempotent
    @blp.arguments(WriteSchema)
    @blp.response(201, WrittenSchema)
    def post(self, body):
        """Insert one row into the test's temporary table."""
        row_id = db.session.execute(
            text("INSERT INTO probe_writes (name) VALUES (:name) RETURNING id"),
            {"name": body["name"]},
        ).scalar_one()
        if body["name"] == "conflict":
            raise Conflict("the probe refuses this name")
        if body["name"] == "answer-400":  # a view that answers a problem (as media's does)
            return problem(400, detail="the probe answers this name with a 400")
        if body["name"] == "slow":  # stays in its transaction a while (concurrency tests)
            db.session.execute(text("SELECT pg_sleep(0.5)"))
        return {"id": row_id, "name": body["name"]}


@blp.route("/staff")
class StaffOnly(MethodView):
    @blp.role_required("grid_staff")
    @blp.response(200, WrittenSchema)
    def get(self):
        """Grid staff (and the roles that include it) only."""
        return {"id": 1, "name": "staff"}


@blp.route("/signed-in")
class SignedIn(MethodView):
    @blp.login_required
    @blp.response(200, WrittenSchema)
    def get(self):
        """Any signed-in caller."""
        return {"id": 2, "name": "signed-in"}


@blp.route("/boom")
class Boom(MethodView):
    @blp.public
    def get(self):
        """Fails with an unexpected error."""
        raise RuntimeError("secret internal detail /srv/app.py line 42")


@blp.route("/limited")
class Limited(MethodView):
    decorators = (limiter.limit("2 per minute"),)

    @blp.public
    @blp.response(200, WrittenSchema)
    def get(self):
        """Allows two calls a minute."""
        return {"id": 3, "name": "limited"}


@blp.route("/undeclared")
class Undeclared(MethodView):
    @blp.response(200, WrittenSchema)
    def get(self):
        """Declares no access rule: the authorization test must catch it."""
        return {"id": 4, "name": "undeclared"}


class FailureArgsSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(["timeout", "unique", "conflict"]))


@blp.route("/db-failure")
class DatabaseFailure(MethodView):
    @blp.public
    @blp.arguments(FailureArgsSchema, location="query")
    @blp.response(200, WrittenSchema)
    def get(self, args):
        """Makes the database fail in a chosen way."""
        if args["kind"] == "timeout":
            db.session.execute(text("SET LOCAL statement_timeout = 1"))
            db.session.execute(text("SELECT pg_sleep(0.2)"))
        elif args["kind"] == "unique":
            for _ in range(2):
                db.session.execute(
                    text("INSERT INTO probe_writes (id, name) VALUES (1, '13800138000')")
                )
        else:
            db.session.execute(
                text("DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40001'; END $$")
            )
        return {"id": 0, "name": "unreachable"}


@blp.route("/public-writes")
class PublicWrites(MethodView):
    @blp.public
    @blp.idempotent
    @blp.arguments(WriteSchema)
    @blp.response(201, WrittenSchema)
    def post(self, body):
        """Insert one row, without a token (as anonymous tips will)."""
        row_id = db.session.execute(
            text("INSERT INTO probe_writes (name) VALUES (:name) RETURNING id"),
            {"name": body["name"]},
        ).scalar_one()
        return {"id": row_id, "name": body["name"]}
