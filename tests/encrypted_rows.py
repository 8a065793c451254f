"""Users that tests running real worker processes commit for real (written by
tests/support/people.py as the model would write them) taken away afterwards with everything a
task's fan-out made for them, and the application those tests made, released."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.support.people import insert_user, signed_in

__all__ = ["forget_users", "insert_user", "release", "signed_in"]


# In an order the foreign keys allow; `:u` is the users' ids.
_FORGET = (
    "DELETE FROM procrastinate_jobs",
    "DELETE FROM deliveries WHERE notification_id IN "
    "(SELECT id FROM notifications WHERE user_id = ANY(:u))",
    "DELETE FROM notifications WHERE user_id = ANY(:u)",
    "DELETE FROM task_recipients WHERE user_id = ANY(:u)",
    "DELETE FROM tasks WHERE created_by = ANY(:u)",
    "DELETE FROM duty_status WHERE user_id = ANY(:u)",
    "DELETE FROM devices WHERE user_id = ANY(:u)",
    "DELETE FROM auth_sessions WHERE user_id = ANY(:u)",
    "DELETE FROM user_areas WHERE user_id = ANY(:u)",
    "DELETE FROM users WHERE id = ANY(:u)",
)


def forget_users(conn: sa.Connection, users: list[Any]) -> None:
    """Delete the users and what tasks, notifications and jobs made for them (and every job)."""
    for statement in _FORGET:
        conn.execute(sa.text(statement), {"u": users})


def release(app: Any) -> None:
    """Close what an application made for a real-worker test opened: its APNs sender's
    connection, its firebase-admin apps, and its database pool."""
    import firebase_admin

    from app.extensions import db

    apns_sender = app.extensions.get("qunfang.push_sender.apns")
    if apns_sender is not None:
        apns_sender.close()
    for name in list(firebase_admin._apps):
        if name.startswith("qunfang-"):
            firebase_admin.delete_app(firebase_admin.get_app(name))
    with app.app_context():
        db.engine.dispose()
