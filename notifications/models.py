"""Notifications kept for a user: the feed is the source of truth, pushes are best effort (the
tasks issue adds devices and FCM delivery on top of these rows)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db


class Notification(db.Model):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_created", "user_id", "created_at"),
        # a task's "received" count
        Index(
            "ix_notifications_received",
            "subject_id",
            postgresql_where=text("received_at IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    data: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # the app reported the push arrived (stops an SMS fallback; the task's "received" count)
    received_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


PLATFORMS = ("android", "ios", "web")
PROVIDERS = ("fcm", "apns", "jpush")
DELIVERY_STATUSES = ("pending", "sent", "logged", "unregistered", "invalid", "failed")
CHANNELS = ("push", "sms")


class Device(db.Model):
    """An FCM registration token of a user's phone (several per user). A token FCM answers
    UNREGISTERED is deleted; a token registered by someone else moves to them (the phone
    changed hands or accounts)."""

    __tablename__ = "devices"
    __table_args__ = (
        CheckConstraint("platform IN ('android', 'ios', 'web')", name="platform"),
        CheckConstraint("provider IN ('fcm', 'apns', 'jpush')", name="provider"),
        Index("ix_devices_user_id", "user_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(4096), unique=True)
    platform: Mapped[str] = mapped_column(String(10))
    # which service reaches the phone: FCM, APNs direct, or JPush (no Google services in China)
    provider: Mapped[str] = mapped_column(String(10), server_default="fcm")
    app_version: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_seen_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Delivery(db.Model):
    """One push of one notification to one device, and what its provider answered; or
    (`channel` sms, no device) the SMS fallback of a notification, at most one each."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("notification_id", "device_id", name="uq_deliveries_notification_device"),
        CheckConstraint(
            "status IN ('pending', 'sent', 'logged', 'unregistered', 'invalid', 'failed')",
            name="status",
        ),
        CheckConstraint("channel IN ('push', 'sms')", name="channel"),
        Index("ix_deliveries_task_status", "task_id", "status"),
        # one SMS per notification; also what a volunteer's SMS of the day are counted from
        Index(
            "uq_deliveries_sms_notification",
            "notification_id",
            unique=True,
            postgresql_where=text("channel = 'sms'"),
        ),
        Index("ix_deliveries_pending", "id", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    notification_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE")
    )
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL"), index=True
    )
    task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # for a task's delivery statistics
    channel: Mapped[str] = mapped_column(String(10), server_default="push")
    status: Mapped[str] = mapped_column(String(15), server_default="pending")
    # a provider's error code (Tencent's reach 42 characters)
    error: Mapped[str | None] = mapped_column(String(80))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    message_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
