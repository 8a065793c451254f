"""Liveness, readiness, and recovery when the database goes away and comes back."""

from __future__ import annotations

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


def test_readyz_costs_one_query(client, count_queries):
    client.get("/readyz")  # warm the pool
    with count_queries() as statements:
        assert client.get("/readyz").status_code == 200
    assert len(statements) == 1
