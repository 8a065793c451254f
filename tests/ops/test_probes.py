"""Liveness, readiness, and recovery when the database goes away and comes back."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from tests.conftest import make_app, server_url, throwaway_database
from tests.ops.tcp_proxy import TcpProxy


def test_healthz_answers_without_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_reports_the_applied_revision(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert response.get_json()["migrations"]


def test_readyz_is_503_while_migrations_are_pending():
    with throwaway_database(server_url()) as url:
        app = make_app(url)
        response = app.test_client().get("/readyz")
        with app.app_context():
            from app.extensions import db

            db.engine.dispose()
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"] == "urn:qunfang:problem:migrations-pending"


def test_the_app_answers_503_while_the_database_is_away_and_recovers_by_itself(database_url):
    real = sa.engine.make_url(database_url)
    proxy = TcpProxy(real.host, real.port)
    proxy.start()
    app = make_app(real.set(port=proxy.port).render_as_string(hide_password=False))
    client = app.test_client()
    try:
        assert client.get("/readyz").status_code == 200

        proxy.stop()
        away = client.get("/readyz")
        assert away.status_code == 503
        assert away.mimetype == "application/problem+json"
        assert away.get_json()["type"] == "urn:qunfang:problem:database-unavailable"
        assert away.headers["Retry-After"]

        proxy.start()
        assert client.get("/readyz").status_code == 200
    finally:
        proxy.stop()
        with app.app_context():
            from app.extensions import db

            db.engine.dispose()


def test_readyz_is_503_within_2_s_while_the_database_is_frozen(database_url):
    """A server that accepts connections and never answers (SIGSTOPped) must not hang the probe:
    pooled connections are checked out to it too, and their ping would wait forever."""
    real = sa.engine.make_url(database_url)
    proxy = TcpProxy(real.host, real.port)
    proxy.start()
    app = make_app(real.set(port=proxy.port).render_as_string(hide_password=False))
    client = app.test_client()
    try:
        assert client.get("/readyz").status_code == 200
        proxy.freeze()
        for _ in range(2):  # a fresh connection each time: the second is no slower
            started = time.monotonic()
            frozen = client.get("/readyz")
            elapsed = time.monotonic() - started
            assert frozen.status_code == 503
            assert frozen.get_json()["type"] == "urn:qunfang:problem:database-unavailable"
            assert elapsed < 2.0
        proxy.thaw()
        assert client.get("/readyz").status_code == 200
    finally:
        proxy.thaw()
        proxy.stop()
        with app.app_context():
            from app.extensions import db

            db.engine.dispose()


def test_requests_carry_statement_and_connection_timeouts(client, connection):
    """Every connection of the application runs with the server-side bounds of the settings."""
    settings = dict(
        connection.execute(
            sa.text(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('statement_timeout', 'idle_in_transaction_session_timeout', 'jit')"
            )
        ).all()
    )
    # 15 s by default; idle transactions are left alone in the test harness (tests/conftest.py).
    assert settings == {
        "statement_timeout": "15000",
        "idle_in_transaction_session_timeout": "0",
        "jit": "off",
    }


def test_sessions_idle_in_a_transaction_are_ended_by_the_server(database_url, monkeypatch):
    from app.extensions import db

    monkeypatch.setenv("DB_IDLE_IN_TRANSACTION_TIMEOUT_S", "1")
    app = make_app(database_url)
    try:
        with app.app_context():
            db.session.execute(sa.text("SELECT 1"))
            time.sleep(1.5)  # inside the transaction, doing nothing
            with pytest.raises(sa.exc.DBAPIError):
                db.session.execute(sa.text("SELECT 1"))
            db.session.rollback()
    finally:
        with app.app_context():
            db.engine.dispose()


def test_a_statement_past_the_timeout_answers_503_timed_out(database_url, monkeypatch):
    from app.core.errors import handle_unexpected
    from app.extensions import db

    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_S", "1")
    app = make_app(database_url)
    try:
        with app.test_request_context():
            started = time.monotonic()
            with pytest.raises(sa.exc.OperationalError) as raised:
                db.session.execute(sa.text("SELECT pg_sleep(5)"))
            assert time.monotonic() - started < 3
            assert raised.value.orig.sqlstate == "57014"
            response = handle_unexpected(raised.value)
            assert response.status_code == 503
            assert response.get_json()["type"] == "urn:qunfang:problem:timed-out"
    finally:
        with app.app_context():
            db.engine.dispose()
