"""The caller's notifications, and the push devices they are sent to."""

from __future__ import annotations

import datetime as dt

from flask.views import MethodView
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from app.core.auth import current_user
from app.core.blueprint import Blueprint
from app.core.errors import NotFound
from app.core.i18n import _
from app.core.pagination import PageArgsSchema, page_of, paginate
from app.extensions import db
from notifications import service
from notifications.models import PLATFORMS, PROVIDERS, Notification

blp = Blueprint(
    "notifications",
    __name__,
    url_prefix="/api/v1/me/notifications",
    description="The caller's notifications",
)
devices_blp = Blueprint(
    "devices", __name__, url_prefix="/api/v1/devices", description="Push devices (FCM tokens)"
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


class DeviceCreateSchema(Schema):
    # FCM tokens run to ~160 characters, APNs' to 64 hex; JPush registration ids are 19.
    token = fields.String(required=True, validate=validate.Length(11, 4096))
    platform = fields.String(required=True, validate=validate.OneOf(PLATFORMS))
    provider = fields.String(load_default="fcm", validate=validate.OneOf(PROVIDERS))
    app_version = fields.String(load_default=None, validate=validate.Length(1, 40))


class DeviceSchema(Schema):
    id = fields.UUID()
    platform = fields.String()
    provider = fields.String()
    app_version = fields.String(allow_none=True)
    created_at = fields.DateTime()
    last_seen_at = fields.DateTime()


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


@devices_blp.route("")
class Devices(MethodView):
    @devices_blp.login_required
    @devices_blp.arguments(DeviceCreateSchema)
    @devices_blp.response(201, DeviceSchema)
    def post(self, body):
        """Register this phone's FCM token (again on every app start: it refreshes it)."""
        return service.register_device(db.session, current_user().id, body)


@devices_blp.route("/<path:token>")
class DeviceByToken(MethodView):
    @devices_blp.login_required
    @devices_blp.response(204)
    def delete(self, token):
        """Forget one of your tokens (sign-out on that phone)."""
        service.remove_device(db.session, current_user().id, token)
