"""The caller's rights over their own personal information."""

from __future__ import annotations

from flask.views import MethodView

from app.core.auth import current_user
from app.core.blueprint import Blueprint
from app.core.pagination import PageArgsSchema, page_of, paginate
from app.extensions import db
from app.privacy import export, service
from app.privacy import jobs as _jobs  # noqa: F401 - registers the periodic job
from app.privacy.schemas import AccessSchema, DataCopySchema

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


@blp.route("/data")
class MyData(MethodView):
    @blp.login_required
    @blp.response(200, DataCopySchema)
    def get(self):
        """A copy of your data: profile, consents, devices, duty, patrols with tracks and
        check-ins, named tips with their history and photos, tasks, service hours,
        notifications and the access log.

        Each section holds up to 1,000 items, newest first (check-ins: 20,000 in all);
        `truncated` names any section that held more. Your asking is kept on the audit trail.
        """
        return export.copy_of_data(db.session, current_user())
