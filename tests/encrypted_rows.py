"""Users that tests running real worker processes commit for real: written with raw SQL as the
model would write them (the phone and real name encrypted, and the phone's keyed hash), and
taken away afterwards with everything a task's fan-out made for them."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from app.core import field_crypto


def insert_user(conn: sa.Connection, *, phone: str, name: str, **columns: Any) -> None:
    """INSERT INTO users the `columns` (id, roles, status, ...), the phone and name encrypted."""
    keyring = field_crypto.installed()
    values = {
        "password_hash": "x",
        **columns,
        "phone_ciphertext": keyring.encrypt(phone),
        "phone_hmac": keyring.lookup(phone),
        "real_name_ciphertext": keyring.encrypt(name),
    }
    conn.execute(sa.insert(sa.table("users", *(sa.column(k) for k in values))), values)


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


def signed_in(conn: sa.Connection, app: Any, user_id: Any) -> str:
    """A login session of `user_id` (committed with `conn`) and an access token naming it."""
    from flask_jwt_extended import create_access_token

    session_id = uuid.uuid4()
    conn.execute(
        sa.text("INSERT INTO auth_sessions (id, user_id, created_at) VALUES (:s, :u, now())"),
        {"s": session_id, "u": user_id},
    )
    with app.app_context():
        return create_access_token(
            identity=str(user_id), additional_claims={"sid": str(session_id)}
        )


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
