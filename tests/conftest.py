"""The test harness: one throw-away PostGIS database per run, built by the migrations; every test
runs in a transaction that is rolled back at its end.

The server comes from TEST_DATABASE_URL, else DATABASE_URL, else the private test cluster that
`make test` starts (var/pg/test.url). The run creates its own database there and drops it at the
end, so it never touches development data.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import flask_migrate
import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import orm, text

from app import create_app
from app.config import PROJECT_ROOT, Config
from app.core.schema_version import MIGRATIONS_DIR
from app.extensions import db

TEST_CLUSTER_URL_FILE = PROJECT_ROOT / "var" / "pg" / "test.url"
_SAVEPOINT_STATEMENTS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def server_url() -> str:
    for name in ("TEST_DATABASE_URL", "DATABASE_URL"):
        if os.environ.get(name):
            return os.environ[name]
    if TEST_CLUSTER_URL_FILE.exists():
        return TEST_CLUSTER_URL_FILE.read_text().strip()
    pytest.exit(
        "no PostGIS to test against: run `make test` (it starts a private test cluster), "
        "or set TEST_DATABASE_URL",
        returncode=2,
    )


@contextlib.contextmanager
def throwaway_database(base_url: str) -> Iterator[str]:
    """Create a fresh database with PostGIS on `base_url`'s server; drop it afterwards."""
    url = sa.engine.make_url(base_url)
    name = f"qunfang_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    test_url = url.set(database=name).render_as_string(hide_password=False)
    try:
        engine = sa.create_engine(test_url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
        engine.dispose()
        yield test_url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def make_app(database_url: str, **overrides):
    return create_app(
        Config.from_env(
            SQLALCHEMY_DATABASE_URI=database_url, ENV="testing", TESTING=True, **overrides
        )
    )


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with throwaway_database(server_url()) as url:
        yield url


@pytest.fixture(scope="session")
def app(database_url):
    app = make_app(database_url)
    with app.app_context():
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
        db.engine.dispose()
    return app


@pytest.fixture
def connection(app) -> Iterator[sa.Connection]:
    """A connection in an open transaction; everything the test does is rolled back."""
    with app.app_context():
        conn = db.engine.connect()
        outer = conn.begin()
        original = db.session
        # The app's commits become savepoint releases inside the outer transaction.
        db.session = orm.scoped_session(
            orm.sessionmaker(bind=conn, join_transaction_mode="create_savepoint"),
            scopefunc=_app_ctx_id,
        )
        try:
            yield conn
        finally:
            db.session.remove()
            db.session = original
            outer.rollback()
            conn.close()


@pytest.fixture
def client(app, connection):
    return app.test_client()


@pytest.fixture
def session(app, connection) -> Iterator[orm.Session]:
    with app.app_context():
        yield db.session


@pytest.fixture
def token_for(app):
    """A factory of bearer headers: token_for("grid_staff", user_id=...)."""

    def make(*roles: str, user_id: str | None = None) -> dict[str, str]:
        with app.app_context():
            token = create_access_token(
                identity=user_id or str(uuid.uuid4()), additional_claims={"roles": list(roles)}
            )
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def count_queries(connection):
    """Counts SQL statements run inside the block: `with count_queries() as counter: ...`."""

    @contextlib.contextmanager
    def counting() -> Iterator[list[str]]:
        statements: list[str] = []

        def record(_conn, _cursor, statement, *_args):
            # Savepoints are the harness's per-test transaction at work, not the code's queries.
            if not statement.startswith(_SAVEPOINT_STATEMENTS):
                statements.append(statement)

        sa.event.listen(connection, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            sa.event.remove(connection, "before_cursor_execute", record)

    return counting


@pytest.fixture(scope="session")
def probe_app(app, database_url):
    """The application plus the test-only probe blueprint (tests/core/probe.py) on the same
    migrated database: the shared machinery exercised before any domain endpoint uses it."""
    from tests.core import probe

    probe_app = make_app(database_url, MAX_CONTENT_LENGTH=4096)
    probe_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(probe.blp)
    return probe_app


@pytest.fixture
def probe_client(probe_app, connection):
    connection.execute(text("CREATE TEMP TABLE probe_writes (id serial PRIMARY KEY, name text)"))
    return probe_app.test_client()


@pytest.fixture
def probe_rows(connection):
    """The names the probe's write endpoint stored in this test, in order."""
    return lambda: (
        connection.execute(text("SELECT name FROM probe_writes ORDER BY id")).scalars().all()
    )
