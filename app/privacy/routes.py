"""The caller's rights over their own personal information."""

from __future__ import annotations

from flask.views import MethodView

from app.core.auth import current_user
from app.core.blueprint import Blueprint
from app.core.pagination import PageArgsSchema, page_of, paginate
from app.extensions import db
from app.privacy import jobs as _jobs  # noqa: F401 - registers the periodic job
from app.privacy import service
from app.privacy.schemas import AccessSchema

blp = Blueprint(
    "privacy", __name__, url_prefix="/api/v1/me", description="Your personal information rights"
)


@blp.route("/access-log")
class AccessLog(MethodView):
    @blp.login_required
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_of(AccessSchema))
    def get(self, args):
        """Who (which role) read your track, your reporter details or your profile, and why."""
        query = service.access_log_query(current_user().id)
        return paginate(db.session, query, scalars=False, **args)
