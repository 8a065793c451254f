"""The admin pages: accounts and their roles inside the signed-in staff member's jurisdiction,
the queue of volunteers waiting for verification, and the audit log.

Each page is open to the roles the API opens it to, through the API's own services:
accounts are listed, read and verified by grid staff and up (`list_visible_users`,
`get_visible_user`, `verify_volunteer`), changed by community admins and up
(`update_account`: only roles they may grant, only accounts whose every area is theirs), and
the audit log is for admins (GET /api/v1/audit's schema and query). A community admin of one
sub-district sees the accounts of that sub-district only. Names and phone numbers are shown
where the API's UserSchema shows them; ID numbers only masked, as there.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy import select
from werkzeug.exceptions import UnprocessableEntity

from app.areas.models import Area
from app.audit import service as audit_service
from app.audit.schemas import AuditArgsSchema
from app.auth import service as auth_service
from app.auth.models import User
from app.auth.schemas import AccountUpdateSchema, UserQueryArgsSchema
from app.console import bp
from app.console import service as console_service
from app.console.access import signed_in_user, staff_required, user_if_known
from app.console.paging import page_count, page_number
from app.core.audit import OUTCOMES
from app.core.auth import ADMIN, COMMUNITY_ADMIN, GRID_STAFF, ROLES, has_any_role
from app.core.errors import Conflict, Forbidden, Unprocessable
from app.core.i18n import _, _l
from app.core.pagination import paginate
from app.extensions import db

USERS_PER_PAGE = 25
EVENTS_PER_PAGE = 50
ROLE_LABELS = {
    "volunteer": _l("Volunteer"),
    "grid_staff": _l("Grid staff"),
    "community_admin": _l("Community admin"),
    "police_liaison": _l("Police liaison"),
    "admin": _l("Admin"),
}
ACCOUNT_STATUS_LABELS = {"active": _l("Active"), "disabled": _l("Disabled")}
AUDIT_OUTCOME_LABELS = {
    "success": _l("Succeeded"),
    "failure": _l("Failure"),
    "denied": _l("Denied"),
}


@bp.context_processor
def _admin_globals():
    def may(*roles: str) -> bool:
        """Whether the signed-in reader holds one of `roles` (for the navigation's links)."""
        user = user_if_known()
        return user is not None and has_any_role(user.roles, roles)

    return {
        "role_label": lambda r: ROLE_LABELS.get(r, r),
        "account_status_label": lambda s: ACCOUNT_STATUS_LABELS.get(s, s),
        "audit_outcome_label": lambda o: AUDIT_OUTCOME_LABELS.get(o, o),
        "may": may,
    }


def _area_names(ids) -> dict[uuid.UUID, str]:
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    return dict(db.session.execute(select(Area.id, Area.name).where(Area.id.in_(ids))).all())


def _query_args() -> dict[str, Any]:
    """The list's filters from the query string, through the API's UserQueryArgsSchema."""
    data = {k: request.args[k] for k in ("role", "status", "verified") if request.args.get(k)}
    try:
        return UserQueryArgsSchema().load(data)
    except ValidationError as exc:
        raise UnprocessableEntity() from exc


def _users_page(template: str, filters: dict[str, Any]):
    actor = signed_in_user()
    query, _count = auth_service.list_visible_users(db.session, actor, filters)
    result = paginate(db.session, query, page=page_number(), page_size=USERS_PER_PAGE)
    homes = _area_names(u.home_community_id for u in result["items"])
    args = request.args.to_dict()
    args.pop("page", None)
    return render_template(
        template,
        result=result,
        pages=page_count(result["total"], USERS_PER_PAGE),
        homes=homes,
        roles=ROLES,
        query_args=args,
    )


@bp.route("/admin/users")
@staff_required(GRID_STAFF)
def users():
    """Accounts inside the staff member's jurisdiction (as GET /api/v1/users), filtered."""
    return _users_page("console/admin_users.html", _query_args())


@bp.route("/admin/verification")
@staff_required(GRID_STAFF)
def verification():
    """Volunteers of the staff member's areas whose real-name registration waits for them."""
    filters = {"role": "volunteer", "verified": False, "status": "active"}
    return _users_page("console/admin_verification.html", filters)


def _user_page(user: User, *, message: str | None = None, status: int = 200):
    actor = signed_in_user()
    held = _area_names([user.home_community_id, *(a.id for a in user.jurisdiction)])
    may_change = has_any_role(actor.roles, [COMMUNITY_ADMIN]) and user.id != actor.id
    options = (
        [(str(a.id), a.name) for a in console_service.areas_for_filter(db.session, actor)]
        if may_change
        else []
    )
    page = render_template(
        "console/admin_user.html",
        user=user,
        home=held.get(user.home_community_id),
        areas=[held[a.id] for a in user.jurisdiction],
        may_change=may_change,
        # The roles the API lets this actor hand out (app/auth/service.py, _GRANTABLE).
        grantable=[r for r in ROLES if r in auth_service.grantable_roles(actor)]
        if may_change
        else [],
        area_options=options,
        # Areas the account holds that the actor's list lacks (beyond their jurisdiction):
        # kept selected, so that saving does not silently drop them.
        other_areas=[a for a in user.jurisdiction if str(a.id) not in dict(options)],
        current_areas={str(a.id) for a in user.jurisdiction},
        message=message,
    )
    return page, status


@bp.route("/admin/users/<uuid:user_id>")
@staff_required(GRID_STAFF)
def user(user_id: uuid.UUID):
    """One account of the staff member's areas: its facts, and for community admins and up
    the form that changes its roles, areas and status."""
    return _user_page(auth_service.get_visible_user(db.session, signed_in_user(), user_id))


@bp.route("/admin/users/<uuid:user_id>", methods=["POST"])
@staff_required(COMMUNITY_ADMIN)
def update_user(user_id: uuid.UUID):
    """Change roles, areas or status, as PATCH /api/v1/users/{id}: refused with the service's
    message, and nothing changed, when the account or a role or area is beyond the actor."""
    actor = signed_in_user()
    found = auth_service.get_visible_user(db.session, actor, user_id)
    body: dict[str, Any] = {
        "roles": request.form.getlist("roles"),
        "status": request.form.get("status", ""),
    }
    areas = sorted(v for v in request.form.getlist("jurisdiction") if v)
    if areas != sorted(str(a.id) for a in found.jurisdiction):
        body["jurisdiction"] = areas
    try:
        values = AccountUpdateSchema().load(body)
        auth_service.update_account(db.session, actor, found, values)
    except ValidationError:
        message = _("Choose roles and a status from the lists.")
        return _user_page(found, message=message, status=422)
    except (Forbidden, Conflict, Unprocessable) as exc:
        # The service refuses before it changes anything; the answer's status rolls back.
        return _user_page(found, message=exc.detail, status=exc.status)
    flash(_("The account was changed."))
    return redirect(url_for("console.user", user_id=found.id), 303)


@bp.route("/admin/users/<uuid:user_id>/verify", methods=["POST"])
@staff_required(GRID_STAFF)
def verify_user(user_id: uuid.UUID):
    """Verify a volunteer's real-name registration (as POST /api/v1/users/{id}/verify)."""
    actor = signed_in_user()
    found = auth_service.get_visible_user(db.session, actor, user_id)
    try:
        auth_service.verify_volunteer(db.session, actor, found)
    except (Forbidden, Conflict) as exc:
        return _user_page(found, message=exc.detail, status=exc.status)
    flash(_("%(name)s is verified.", name=found.real_name))
    if request.form.get("back") == "queue":
        return redirect(url_for("console.verification"), 303)
    return redirect(url_for("console.user", user_id=found.id), 303)


# -- the audit log ---------------------------------------------------------------------------


@bp.route("/admin/audit")
@staff_required(ADMIN)
def audit_log():
    """The audit trail, newest first, with GET /api/v1/audit's filters."""
    data = {
        key: request.args[key].strip()
        for key in ("actor_id", "action", "object_type", "object_id", "outcome", "from", "to")
        if request.args.get(key, "").strip()
    }
    try:
        args = AuditArgsSchema().load(data)
    except ValidationError as exc:
        raise UnprocessableEntity() from exc
    result = paginate(
        db.session,
        audit_service.events_query(args),
        page=page_number(),
        page_size=EVENTS_PER_PAGE,
    )
    query_args = request.args.to_dict()
    query_args.pop("page", None)
    return render_template(
        "console/admin_audit.html",
        result=result,
        pages=page_count(result["total"], EVENTS_PER_PAGE),
        outcomes=OUTCOMES,
        query_args=query_args,
    )
