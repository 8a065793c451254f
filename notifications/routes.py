"""The caller's notifications (tip status changes now; tasks later)."""

from __future__ import annotations

import datetime as dt

from flask.views import MethodView
from marshmallow import Schema, fields
from sqlalchemy import select

from app.core.auth import current_user
from app.core.blueprint import Blueprint
from app.core.errors import NotFound
from app.core.i18n import _
from app.core.pagination import PageArgsSchema, page_of, paginate
from app.extensions import db
from notifications.models import Notification

blp = Blueprint(
    "notifications",
    __name__,
    url_prefix="/api/v1/me/notifications",
    description="The caller's notifications",
)


class NotificationSchema(Schema):
    id = fields.UUID()
    kind = fields.String(metadata={"description": "tip_status, tip_note"})
    subject_type = fields.String()
    subject_id = fields.UUID()
    data = fields.Dict()
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)
    received_at = fields.DateTime(allow_none=True)


class UnreadArgsSchema(Schema):
    unread = fields.Boolean(load_default=False)


@blp.route("")
class Notifications(MethodView):
    @blp.login_required
    @blp.arguments(UnreadArgsSchema, location="query")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_of(NotificationSchema))
    def get(self, args, page):
        """Your notifications, newest first (`unread=true`: only unread ones)."""
        query = select(Notification).where(Notification.user_id == current_user().id)
        if args["unread"]:
            query = query.where(Notification.read_at.is_(None))
        query = query.order_by(Notification.created_at.desc(), Notification.id.desc())
        return paginate(db.session, query, **page)


@blp.route("/<uuid:notification_id>/read")
class Read(MethodView):
    @blp.login_required
    @blp.response(200, NotificationSchema)
    def post(self, notification_id):
        """Mark one of your notifications read."""
        notification = db.session.get(Notification, notification_id)
        if notification is None or notification.user_id != current_user().id:
            raise NotFound(_("No such notification."))
        notification.read_at = notification.read_at or dt.datetime.now(dt.UTC)
        db.session.flush()
        return notification


@blp.route("/<uuid:notification_id>/received")
class Received(MethodView):
    @blp.login_required
    @blp.response(200, NotificationSchema)
    def post(self, notification_id):
        """The app reports that the push of one of your notifications arrived (idempotent: the
        first receipt's time is kept). Stops an SMS fallback; staff see it as "received"."""
        notification = db.session.get(Notification, notification_id)
        if notification is None or notification.user_id != current_user().id:
            raise NotFound(_("No such notification."))
        notification.received_at = notification.received_at or dt.datetime.now(dt.UTC)
        db.session.flush()
        return notification
