"""Phone numbers and real names encrypted at rest (#21 item 6): what the database holds, how
accounts are still found, the rotation command, and the migration of existing rows."""

from __future__ import annotations

import datetime as dt
import shutil

import flask_migrate
import pytest
import sqlalchemy as sa
from sqlalchemy import select, text

from app.auth.models import User, phone_lookup
from app.core import field_crypto
from app.core.schema_version import MIGRATIONS_DIR
from app.extensions import db
from tests.auth.test_consents import born_id
from tests.conftest import PASSWORD, make_app, server_url, throwaway_database


def raw_user(connection, user_id) -> sa.Row:
    return connection.execute(
        text("SELECT phone_ciphertext, phone_hmac, real_name_ciphertext FROM users WHERE id = :id"),
        {"id": user_id},
    ).one()


@pytest.fixture
def registered(client, area):
    body = {
        "phone": "13912345678",
        "password": PASSWORD,
        "real_name": "李娜",
        "id_number": born_id(dt.date(1985, 6, 15)),
        "home_community_id": str(area("110105001024").id),
        "consents": {"terms_version": "2026-11", "id_number": True},
    }
    answer = client.post("/api/v1/auth/register", json=body)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["user"]


def test_the_database_holds_the_phone_and_name_only_encrypted(connection, registered):
    row = raw_user(connection, registered["id"])
    keyring = field_crypto.installed()
    for clear, sealed in (
        ("13912345678", row.phone_ciphertext),
        ("李娜", row.real_name_ciphertext),
    ):
        assert clear.encode() not in bytes(sealed)
        assert keyring.decrypt(bytes(sealed)) == clear
    assert bytes(row.phone_hmac) == phone_lookup("13912345678")
    assert registered["phone"] == "13912345678" and registered["real_name"] == "李娜"


def test_sign_in_and_the_staff_list_still_answer_in_clear(client, registered, token_for):
    signed_in = client.post(
        "/api/v1/auth/login", json={"phone": "+86 139-1234-5678", "password": PASSWORD}
    )
    assert signed_in.status_code == 200
    listed = client.get(
        "/api/v1/users", query_string={"page_size": 100}, headers=token_for("grid_staff")
    ).get_json()
    assert {"phone": "13912345678", "real_name": "李娜"}.items() <= next(
        u for u in listed["items"] if u["id"] == registered["id"]
    ).items()


def test_one_account_per_phone_holds_under_encryption(client, registered, area):
    again = client.post(
        "/api/v1/auth/register",
        json={
            "phone": "13912345678",
            "password": PASSWORD,
            "real_name": "别人",
            "id_number": born_id(dt.date(1990, 1, 1), serial=8),
            "consents": {"terms_version": "2026-11", "id_number": True},
        },
    )
    assert again.status_code == 409


def test_sql_cannot_compare_an_encrypted_column(session):
    with pytest.raises(TypeError, match="keyed hash"):
        select(User.id).where(User.phone == "13912345678")
    with pytest.raises(TypeError, match="keyed hash"):
        select(User.id).where(User.real_name.in_(["李娜"]))


def test_keys_rotate_rewraps_with_a_new_master_key(app, connection, registered, tmp_path):
    key_file, keyring_file = tmp_path / "field-key", tmp_path / "field-keyring.json"
    shutil.copy(app.config["FIELD_KEY_FILE"], key_file)
    shutil.copy(app.config["FIELD_KEYRING_FILE"], keyring_file)
    old_master = field_crypto.read_master_key(key_file)
    runner = app.test_cli_runner()
    settings = {"FIELD_KEY_FILE": str(key_file), "FIELD_KEYRING_FILE": str(keyring_file)}
    original = {k: app.config[k] for k in settings}
    app.config.update(settings)
    try:
        result = runner.invoke(args=["keys", "rotate", "--new-key-file", str(tmp_path / "new")])
    finally:
        app.config.update(original)
    assert result.exit_code == 0, result.output
    assert "2 keys re-wrapped" in result.output
    with pytest.raises(field_crypto.FieldKeyError):
        field_crypto.load_keyring(old_master, keyring_file)
    rotated = field_crypto.load_keyring(
        field_crypto.read_master_key(tmp_path / "new"), keyring_file
    )
    row = raw_user(connection, registered["id"])
    assert rotated.decrypt(bytes(row.phone_ciphertext)) == "13912345678"
    assert rotated.lookup("13912345678") == bytes(row.phone_hmac)


def test_0021_encrypts_the_rows_there_and_0020_takes_them_back():
    with throwaway_database(server_url()) as url:
        app = make_app(url)
        with app.app_context():
            flask_migrate.upgrade(directory=str(MIGRATIONS_DIR), revision="0020")
            with db.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO users (id, phone, password_hash, real_name) VALUES "
                        "('00000000-0000-4000-8000-000000000001', '13700000001', 'x', '张伟')"
                    )
                )
                conn.execute(
                    text(
                        "INSERT INTO guardian_consents (user_id, guardian_name, guardian_phone, "
                        "consented_at) VALUES ('00000000-0000-4000-8000-000000000001', '张强', "
                        "'13700000002', now())"
                    )
                )
            flask_migrate.upgrade(directory=str(MIGRATIONS_DIR), revision="0021")
            keyring = field_crypto.installed()
            with db.engine.connect() as conn:
                row = conn.execute(
                    text("SELECT phone_ciphertext, phone_hmac, real_name_ciphertext FROM users")
                ).one()
                guardian = conn.execute(
                    text(
                        "SELECT guardian_name_ciphertext, guardian_phone_ciphertext "
                        "FROM guardian_consents"
                    )
                ).one()
                columns = {c["name"] for c in sa.inspect(conn).get_columns("users")}
            assert {"phone", "real_name"}.isdisjoint(columns)
            assert keyring.decrypt(bytes(row.phone_ciphertext)) == "13700000001"
            assert keyring.decrypt(bytes(row.real_name_ciphertext)) == "张伟"
            assert bytes(row.phone_hmac) == keyring.lookup("13700000001")
            assert [keyring.decrypt(bytes(v)) for v in guardian] == ["张强", "13700000002"]

            flask_migrate.downgrade(directory=str(MIGRATIONS_DIR), revision="0020")
            with db.engine.connect() as conn:
                back = conn.execute(text("SELECT phone, real_name FROM users")).one()
                guardian_back = conn.execute(
                    text("SELECT guardian_name, guardian_phone FROM guardian_consents")
                ).one()
            assert tuple(back) == ("13700000001", "张伟")
            assert tuple(guardian_back) == ("张强", "13700000002")
            db.engine.dispose()
