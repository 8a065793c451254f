"""The caller's rights over their own personal information."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from app.auth import login_limits
from app.auth import service as auth_service
from app.auth.service import AuthSettings
from app.core import audit
from app.core.auth import COMMUNITY_ADMIN, current_user
from app.core.blueprint import Blueprint
from app.core.jobs import defer
from app.core.pagination import PageArgsSchema, page_of, paginate
from app.extensions import db
from app.privacy import archive, deletion, export, jobs, service
from app.privacy.schemas import (
    AccessSchema,
    AccountDeleteSchema,
    DataArchiveSchema,
    DataCopySchema,
    DeletionScheduledSchema,
    StaffAccountDeleteSchema,
)
from app.storage import export_store, streamed

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


@blp.route("/data/export")
class MyDataExport(MethodView):
    @blp.login_required
    @blp.response(202, DataArchiveSchema)
    def post(self):
        """Ask for a ZIP of your data with the photos of your tips, made in the background.

        The answer's `id` is polled at GET /me/data/archives/{id}; once `ready`, its
        `download_url` serves the ZIP (`data.json`, as GET /me/data, and `photos/`) until
        `expires_at` (7 days). One is made at a time: asking again meanwhile answers it.
        """
        made, new = archive.request(db.session, current_user())
        if new:
            defer(jobs.build_data_archive, archive_id=str(made.id))
        return made


@blp.route("/data/archives/<uuid:archive_id>")
class MyDataArchive(MethodView):
    @blp.login_required
    @blp.response(200, DataArchiveSchema)
    def get(self, archive_id):
        """One of your data archives: whether it is ready, and where to download it."""
        return archive.get_own(db.session, current_user(), archive_id)


@blp.route("/data/archives/<uuid:archive_id>/file")
class MyDataArchiveFile(MethodView):
    @blp.login_required
    @blp.response(
        200,
        description="the ZIP: data.json and photos/",
        content_type="application/zip",
    )
    @blp.alt_response(409, response="CONFLICT")
    def get(self, archive_id):
        """Download your data archive (409 until it is ready); every download is audited."""
        user = current_user()
        made = archive.get_own(db.session, user, archive_id)
        stored = archive.open_ready(made, export_store())
        audit.record(
            db.session,
            "account.data_downloaded",
            actor=user,
            object_type="data_archive",
            object_ids=[made.id],
        )
        return streamed(stored, "application/zip", download_name=f"qunfang-my-data-{made.id}.zip")


# Account deletion is privacy's work (the grace period, the erasure, what the law keeps), at the
# accounts' URLs and under their tags, where clients find it: DELETE /api/v1/me and
# DELETE /api/v1/users/{id}. Accounts import nothing of privacy (the layers, pyproject.toml).
me_deletion_blp = Blueprint("me_deletion", __name__, url_prefix="/api/v1/me", doc_tag="me")
users_deletion_blp = Blueprint(
    "users_deletion", __name__, url_prefix="/api/v1/users", doc_tag="users"
)


@me_deletion_blp.route("")
class MyAccountDeletion(MethodView):
    @me_deletion_blp.login_required
    @me_deletion_blp.arguments(AccountDeleteSchema)
    @me_deletion_blp.response(202, DeletionScheduledSchema)
    @me_deletion_blp.alt_response(409, response="CONFLICT")
    @me_deletion_blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def delete(self, body):
        """Delete your account: re-enter your password; your data is erased after a grace period.

        Every session is signed out at once and you go off duty. Signing in before
        `erase_after` cancels the deletion. Then your name, phone, ID number, password, devices,
        duty, patrols and their tracks, consents, sessions and notifications are erased, your
        tips become anonymous and your service time joins anonymous totals; `kept_by_law` lists
        what stays. A wrong password answers 422 and counts as a failed sign-in (429 once the
        sign-in attempts are spent). Staff and admin accounts answer 409.
        """
        user = current_user()
        login_limits.count_password_attempt(user.phone)
        auth_service.check_password(
            db.session, user, body["password"], AuthSettings.from_config(current_app.config)
        )
        scheduled = deletion.request(
            db.session, user, grace_days=current_app.config["ACCOUNT_DELETION_GRACE_DAYS"]
        )
        return deletion.answer(scheduled)


@users_deletion_blp.route("/<uuid:user_id>")
class AccountDeletion(MethodView):
    @users_deletion_blp.role_required(COMMUNITY_ADMIN)
    @users_deletion_blp.arguments(StaffAccountDeleteSchema)
    @users_deletion_blp.response(202, DeletionScheduledSchema)
    @users_deletion_blp.alt_response(409, response="CONFLICT")
    def delete(self, body, user_id):
        """Delete a volunteer's account at their request (their data is erased after the grace
        period, as with DELETE /api/v1/me); give the reason, kept on the audit trail.

        Only volunteer accounts whose home community and areas lie inside your jurisdiction;
        the volunteer signing in before `erase_after` cancels it.
        """
        actor = current_user()
        user = auth_service.get_visible_user(db.session, actor, user_id)
        auth_service.check_manages(db.session, actor, user)
        scheduled = deletion.request(
            db.session,
            user,
            grace_days=current_app.config["ACCOUNT_DELETION_GRACE_DAYS"],
            actor=actor,
            reason=body["reason"].strip(),
        )
        return deletion.answer(scheduled)
