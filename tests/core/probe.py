"""A test-only blueprint that exercises the shared machinery (access rules, parsing, errors,
idempotency, rate limits) through real requests, before any domain endpoint exists."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, validate
from sqlalchemy import text

from app.core.blueprint import Blueprint
from app.core.errors import Conflict
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
