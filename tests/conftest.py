"""The test harness: one throw-away PostGIS database per run, built by the migrations; every test
runs in a transaction that is rolled back at its end.

The server comes from TEST_DATABASE_URL, else the private test cluster that `make test` starts
(var/pg/test.url). The run creates its own database there and drops it at the end, so it never
touches development data. As in production, two roles: the database is made and migrated by
TEST_DATABASE_URL's role (the owner), and the application runs as TEST_APP_DATABASE_URL's role
(var/pg/test.app.url), which owns nothing (app/core/db_roles.py).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator

import flask_migrate
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from flask_jwt_extended import create_access_token
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import orm, text

from app import create_app, demo
from app.areas import service as areas_service
from app.auth.models import AuthSession, User
from app.config import PROJECT_ROOT, Config
from app.core.schema_version import MIGRATIONS_DIR
from app.extensions import db

TEST_CLUSTER_URL_FILE = PROJECT_ROOT / "var" / "pg" / "test.url"
TEST_CLUSTER_APP_URL_FILE = PROJECT_ROOT / "var" / "pg" / "test.app.url"
_SAVEPOINT_STATEMENTS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")

# The fleet fault test starts a whole fleet and owns var/fleet (minutes): `make fleet-test`
# runs it (FLEET=1). Left out of the suite's collection otherwise, rather than skipped.
collect_ignore_glob = [] if os.environ.get("FLEET") == "1" else ["fleet/*"]


def server_url() -> str:
    """The owner's role on the test server: it creates, migrates and drops the run's database."""
    if os.environ.get("TEST_DATABASE_URL"):
        return os.environ["TEST_DATABASE_URL"]
    if TEST_CLUSTER_URL_FILE.exists():
        return TEST_CLUSTER_URL_FILE.read_text().strip()
    pytest.exit(
        "no PostGIS to test against: run `make test` (it starts a private test cluster), "
        "or set TEST_DATABASE_URL and TEST_APP_DATABASE_URL",
        returncode=2,
    )


def app_role_url() -> str:
    """The application's role on the test server (its database part is not used)."""
    if os.environ.get("TEST_APP_DATABASE_URL"):
        return os.environ["TEST_APP_DATABASE_URL"]
    if not os.environ.get("TEST_DATABASE_URL") and TEST_CLUSTER_APP_URL_FILE.exists():
        return TEST_CLUSTER_APP_URL_FILE.read_text().strip()
    pytest.exit(
        "TEST_APP_DATABASE_URL is not set: the application runs as a role that owns nothing "
        "(see README, Database roles); `make test` sets it for its private cluster",
        returncode=2,
    )


def _with_role(url: str, role_url: str) -> str:
    role = sa.engine.make_url(role_url)
    return (
        sa.engine.make_url(url)
        .set(username=role.username, password=role.password)
        .render_as_string(hide_password=False)
    )


def as_app(url: str) -> str:
    """`url`'s database, reached as the application's role."""
    return _with_role(url, app_role_url())


def as_owner(url: str) -> str:
    """`url`'s database, reached as the owner's role."""
    return _with_role(url, server_url())


# A database already migrated and loaded with the demo data, on the test server, that the run's
# database is copied from instead of being built: scripts/mutation.py makes one from the same
# migrations before starting hundreds of short sessions (a mutant changes application code, never
# a migration). Each test is still rolled back in the copy, as always.
TEMPLATE_DATABASE = os.environ.get("QF_TEST_TEMPLATE_DATABASE")


@contextlib.contextmanager
def throwaway_database(base_url: str, template: str | None = None) -> Iterator[str]:
    """Create a fresh database with PostGIS on `base_url`'s server (a copy of `template` when
    given); drop it afterwards."""
    url = sa.engine.make_url(base_url)
    name = f"qunfang_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        copy = f' TEMPLATE "{template}"' if template else ""
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"{copy}')
    test_url = url.set(database=name).render_as_string(hide_password=False)
    try:
        if not template:
            engine = sa.create_engine(test_url, poolclass=sa.pool.NullPool)
            with engine.begin() as conn:
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
            engine.dispose()
        yield test_url
    finally:
        _drop_database(admin, name)
        admin.dispose()


def _drop_database(admin: sa.Engine, name: str, attempts: int = 10) -> None:
    """DROP ... WITH (FORCE), retried: a server process of another role (an autovacuum
    worker) may still be inside the database for a moment, and we may not terminate it."""
    for attempt in range(attempts):
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except sa.exc.DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


# Each test runs inside one transaction held open from set-up to tear-down, idle between its
# statements for as long as the test likes: the server must not end such sessions.
os.environ["DB_IDLE_IN_TRANSACTION_TIMEOUT_S"] = "0"
_TEST_MEDIA_ROOT = tempfile.mkdtemp(prefix="qf-test-media-")
atexit.register(shutil.rmtree, _TEST_MEDIA_ROOT, ignore_errors=True)
TEST_SETTINGS = {
    # Argon2id still, with costs that keep the suite fast (production: 3 passes, 64 MiB).
    "ARGON2_TIME_COST": 1,
    "ARGON2_MEMORY_KIB": 1024,
    # Every test client comes from 127.0.0.1: per-client limits are tested on their own.
    "LOGIN_CLIENT_RATE_LIMIT": "10000 per minute",
    "REGISTER_RATE_LIMIT": "10000 per minute",
    "VISIT_RATE_LIMIT": "10000 per minute",
    "TIP_RATE_LIMIT": "10000 per minute",
    "FOLLOW_RATE_LIMIT": "10000 per minute",
    "NEARBY_RATE_LIMIT": "10000 per minute",
    "MEDIA_RATE_LIMIT": "10000 per minute",
    "HEATMAP_RATE_LIMIT": "10000 per minute",
    # No identity cache: each test runs inside one transaction that is rolled back, so the
    # notifications that invalidate the cache are never sent. Tests of the cache enable it
    # (tests/auth/test_identity_cache.py).
    "AUTH_CACHE_SECONDS": 0,
    # Photos of the run go to a throw-away directory, not the checkout's var/media.
    "MEDIA_ROOT": _TEST_MEDIA_ROOT,
    "EXPORT_ROOT": _TEST_MEDIA_ROOT + "/exports",
}
# QF_TEST_STORAGE=s3 runs the suite's files through S3: moto's server on 127.0.0.1, a bucket
# for the run (tests/fakes/s3.py; `make test-s3`). Tests about local folders say `local`.
if os.environ.get("QF_TEST_STORAGE", "local") == "s3":
    from tests.fakes.s3 import shared_server

    _S3 = shared_server()
    TEST_SETTINGS.update(_S3.settings(_S3.new_bucket("qf-run")))
PASSWORD = "Correct-Horse-Battery-9"


def through_pooler(url: str, pooler_url: str) -> str:
    """`url`'s database and role, reached through the pooler at `pooler_url`'s address."""
    pooler = sa.engine.make_url(pooler_url)
    return (
        sa.engine.make_url(url)
        .set(host=pooler.host, port=pooler.port)
        .render_as_string(hide_password=False)
    )


def pooled_settings(app_url: str) -> dict:
    """With TEST_POOLED_DATABASE_URL (PgBouncer in transaction mode, `make test-pgbouncer`),
    the application reaches its database through it, as in a pooled deployment."""
    pooler_url = os.environ.get("TEST_POOLED_DATABASE_URL")
    if not pooler_url:
        return {"SQLALCHEMY_DATABASE_URI": app_url}
    return {
        "SQLALCHEMY_DATABASE_URI": through_pooler(app_url, pooler_url),
        "DATABASE_POOLER": "pgbouncer",
        "DATABASE_DIRECT_URL": app_url,
    }


def make_app(database_url: str, **overrides):
    """The application on `database_url`'s database: as the application's role, with migrations
    as the owner's (through PgBouncer when TEST_POOLED_DATABASE_URL is set)."""
    settings = {**pooled_settings(as_app(database_url)), **TEST_SETTINGS, **overrides}
    return create_app(
        Config.from_env(
            MIGRATION_DATABASE_URI=as_owner(database_url),
            ENV="testing",
            TESTING=True,
            **settings,
        )
    )


@pytest.fixture(scope="session")
def owner_database_url() -> Iterator[str]:
    """The run's database, as its owner: for set-up that is DDL (the application may do none)."""
    with throwaway_database(server_url(), TEMPLATE_DATABASE) as url:
        yield url


@pytest.fixture(scope="session")
def database_url(owner_database_url) -> str:
    """The run's database, as the application's role."""
    return as_app(owner_database_url)


@pytest.fixture(scope="session")
def app(database_url):
    """The application on the run's database: migrated, with the demo data set loaded."""
    app = make_app(database_url)
    if not TEMPLATE_DATABASE:
        with app.app_context():
            build_database()
    return app


def build_database() -> None:
    """Migrate the app's database and load the demo data set (in an app context)."""
    flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
    demo.load(db.session, log=lambda _line: None)
    db.session.commit()
    db.engine.dispose()


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
    return english(app.test_client())


def english(test_client):
    """The suite's clients read English (`Accept-Language: en`): their assertions are about
    behaviour, some on English details. tests/test_i18n.py asks without it (zh-CN) and with it."""
    test_client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return test_client


@pytest.fixture
def session(app, connection) -> Iterator[orm.Session]:
    """The test's session. Requests made meanwhile share it (Flask reuses the pushed app
    context), so set-up data is committed, which only releases a savepoint of the test's
    transaction: a request that rolls back cannot take it away, and the test's end does."""
    with app.app_context():
        yield db.session


@pytest.fixture
def area(session):
    """The demo data's areas by code: area("110105001024")."""
    return lambda code: areas_service.get_by_code(session, code)


@pytest.fixture
def create_user(session, area):
    """A factory of accounts: create_user(roles=["grid_staff"], jurisdiction=["110105001024"])."""
    counter = iter(range(10_000))
    hashed = PasswordHasher(time_cost=1, memory_cost=1024).hash(PASSWORD)

    def make(
        roles=("volunteer",),
        jurisdiction=(),
        home=None,
        **overrides,
    ) -> User:
        n = next(counter)
        values = {
            "id": uuid.uuid4(),
            "phone": f"139{uuid.uuid4().int % 10**8:08d}",
            "password_hash": hashed,
            "real_name": f"测试用户{n}",
            "roles": list(roles),
            "volunteer_types": [],
            "skills": [],
            "status": "active",
            "home_community_id": area(home).id if home else None,
        }
        user = User(**{**values, **overrides})
        user.jurisdiction = [area(code) for code in jurisdiction]
        session.add(user)
        session.commit()  # inside the test's transaction: a request's rollback keeps it
        return user

    return make


# Where each role's test account works unless a test says otherwise: staff of Jianwai.
DEFAULT_JURISDICTION = {
    "grid_staff": ("110105001024",),
    "community_admin": ("110105001000",),
    "police_liaison": ("110105001000",),
}


@pytest.fixture
def token_for(app, session, create_user):
    """Bearer headers of a real session: token_for(user), or token_for("grid_staff") for a new
    account with that role (and a default jurisdiction for staff)."""

    def make(user_or_role) -> dict[str, str]:
        user = user_or_role
        if isinstance(user_or_role, str):
            user = create_user(
                roles=[user_or_role], jurisdiction=DEFAULT_JURISDICTION.get(user_or_role, ())
            )
        auth_session = AuthSession(id=uuid.uuid4(), user_id=user.id)
        session.add(auth_session)
        session.commit()
        with app.app_context():
            token = create_access_token(
                identity=str(user.id), additional_claims={"sid": str(auth_session.id)}
            )
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def ledger(connection):
    """What requests wrote since `ledger.mark()` (made at first): `ledger.changes()` is empty
    when they wrote nothing (tests/ledger.py)."""
    from tests.ledger import Ledger

    return Ledger(connection)


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
    return english(probe_app.test_client())


@pytest.fixture
def probe_rows(connection):
    """The names the probe's write endpoint stored in this test, in order."""
    return lambda: (
        connection.execute(text("SELECT name FROM probe_writes ORDER BY id")).scalars().all()
    )
