"""`GET /api/v1/audit`: the audit trail, for admins."""

from __future__ import annotations

from flask.views import MethodView

from app.audit import service
from app.audit.schemas import AuditArgsSchema, AuditEventSchema
from app.core.auth import ADMIN
from app.core.blueprint import Blueprint
from app.core.pagination import PageArgsSchema, page_of, paginate
from app.extensions import db

blp = Blueprint("audit", __name__, url_prefix="/api/v1/audit", description="The audit trail")


@blp.route("")
class Audit(MethodView):
    @blp.role_required(ADMIN)
    @blp.arguments(AuditArgsSchema, location="query")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_of(AuditEventSchema))
    def get(self, args, page):
        """Audit events, newest first, filtered by actor, action, object type and id, outcome
        and time (`from` inclusive, `to` exclusive)."""
        return paginate(db.session, service.events_query(args), **page)
