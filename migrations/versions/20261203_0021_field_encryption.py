"""Phone numbers and real names encrypted at rest (issue #21 item 6): users.phone and
users.real_name become phone_ciphertext and real_name_ciphertext (AES-256-GCM under a data key
wrapped by a master key that is not in the database, app/core/field_crypto.py), with
phone_hmac (HMAC-SHA256 under a lookup key of its own) to find an account by phone and keep
phones unique; the guardian's name and phone of guardian_consents likewise.

Existing rows are encrypted here, in Python, with the keyring of FIELD_KEY_FILE and
FIELD_KEYRING_FILE: run it with the application's settings. Downgrading decrypts them back.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 09:00:00

"""

import sqlalchemy as sa
from alembic import op

from app.core import field_crypto

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# table -> (key column, [(clear column, encrypted column, its old type)])
_FIELDS = {
    "users": (
        "id",
        [
            ("phone", "phone_ciphertext", sa.String(length=11)),
            ("real_name", "real_name_ciphertext", sa.String(length=50)),
        ],
    ),
    "guardian_consents": (
        "user_id",
        [
            ("guardian_name", "guardian_name_ciphertext", sa.String(length=50)),
            ("guardian_phone", "guardian_phone_ciphertext", sa.String(length=11)),
        ],
    ),
}


def _encrypt_rows(table: str, key: str, columns: list[tuple[str, str, sa.types.TypeEngine]]):
    keyring = field_crypto.installed()
    bind = op.get_bind()
    clear = ", ".join(c for c, _e, _t in columns)
    rows = bind.execute(sa.text(f"SELECT {key}, {clear} FROM {table}")).all()
    if not rows:
        return
    sets = ", ".join(f"{e} = :{e}" for _c, e, _t in columns)
    extra = ", phone_hmac = :phone_hmac" if table == "users" else ""
    updates = []
    for row in rows:
        values = {"key": row[0]}
        for (clear_name, encrypted_name, _type), value in zip(columns, row[1:], strict=True):
            values[encrypted_name] = keyring.encrypt(value)
            if table == "users" and clear_name == "phone":
                values["phone_hmac"] = keyring.lookup(value)
        updates.append(values)
    bind.execute(
        sa.text(f"UPDATE {table} SET {sets}{extra} WHERE {key} = :key"),
        updates,
    )


def _decrypt_rows(table: str, key: str, columns: list[tuple[str, str, sa.types.TypeEngine]]):
    keyring = field_crypto.installed()
    bind = op.get_bind()
    encrypted = ", ".join(e for _c, e, _t in columns)
    rows = bind.execute(sa.text(f"SELECT {key}, {encrypted} FROM {table}")).all()
    if not rows:
        return
    sets = ", ".join(f"{c} = :{c}" for c, _e, _t in columns)
    updates = [
        {
            "key": row[0],
            **{
                clear_name: keyring.decrypt(bytes(value))
                for (clear_name, _e, _t), value in zip(columns, row[1:], strict=True)
            },
        }
        for row in rows
    ]
    bind.execute(sa.text(f"UPDATE {table} SET {sets} WHERE {key} = :key"), updates)


def upgrade():
    for table, (key, columns) in _FIELDS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for _clear, encrypted, _type in columns:
                batch_op.add_column(sa.Column(encrypted, sa.LargeBinary(), nullable=True))
            if table == "users":
                batch_op.add_column(sa.Column("phone_hmac", sa.LargeBinary(32), nullable=True))
        _encrypt_rows(table, key, columns)
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table == "users":
                batch_op.drop_constraint("uq_users_phone", type_="unique")
                batch_op.alter_column("phone_hmac", nullable=False)
                batch_op.create_unique_constraint(op.f("uq_users_phone_hmac"), ["phone_hmac"])
            for clear, encrypted, _type in columns:
                batch_op.alter_column(encrypted, nullable=False)
                batch_op.drop_column(clear)


def downgrade():
    for table, (key, columns) in _FIELDS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for clear, _encrypted, type_ in columns:
                batch_op.add_column(sa.Column(clear, type_, nullable=True))
        _decrypt_rows(table, key, columns)
        with op.batch_alter_table(table, schema=None) as batch_op:
            for clear, encrypted, _type in columns:
                batch_op.alter_column(clear, nullable=False)
                batch_op.drop_column(encrypted)
            if table == "users":
                batch_op.drop_constraint(op.f("uq_users_phone_hmac"), type_="unique")
                batch_op.drop_column("phone_hmac")
                batch_op.create_unique_constraint(op.f("uq_users_phone"), ["phone"])
