"""Users written with raw SQL (by tests that run real worker processes) carry what the model
would write: the phone and real name encrypted, and the phone's keyed hash."""

from __future__ import annotations

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
