"""Heavy reads on a real streaming replica of the test cluster (app/core/replica.py).

`scripts/db.sh replica test` makes a hot standby of the private test cluster (pg_basebackup -R);
the run's database reaches it by streaming replication like any other. What the replica must
see is committed for real (the usual per-test transaction is never replicated) and taken away
afterwards. The replica is removed at the end of the run (its slot would keep WAL forever).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import g

from app.config import PROJECT_ROOT
from app.core import replica as replicas
from app.core.db import reads_only
from app.extensions import db
from tests.conftest import TEST_CLUSTER_URL_FILE, english, make_app, server_url
from tests.encrypted_rows import forget_users, insert_user, release, signed_in

DB_SH = str(PROJECT_ROOT / "scripts" / "db.sh")
HEATMAP = "/api/v1/public/heatmap?bbox=116.40,39.88,116.50,39.95"
HEADER = replicas.READ_SOURCE_HEADER


def db_sh(*args: str) -> None:
    subprocess.run([DB_SH, *args], check=True, capture_output=True, timeout=180)  # noqa: S603


@pytest.fixture(scope="module")
def replica_server() -> Iterator[str]:
    """The test cluster's streaming replica: the application role's URL (its database part
    unused)."""
    if (
        not TEST_CLUSTER_URL_FILE.exists()
        or server_url() != TEST_CLUSTER_URL_FILE.read_text().strip()
    ):
        pytest.skip("a replica is made of the private test cluster only (scripts/db.sh)")
    db_sh("replica", "test")
    try:
        yield (PROJECT_ROOT / "var" / "pg" / "test-replica.app.url").read_text().strip()
    finally:
        db_sh("destroy", "test-replica")


@pytest.fixture(scope="module")
def replica_app(app, database_url, replica_server):
    """The application with the replica of the run's database, its lag checked on every
    request (REPLICA_CHECK_S = 0) against a bound of 1 s."""
    url = sa.engine.make_url(replica_server).set(database=sa.engine.make_url(database_url).database)
    replica_app = make_app(
        database_url,
        DATABASE_REPLICA_URL=url.render_as_string(hide_password=False),
        REPLICA_MAX_LAG_S=1.0,
        REPLICA_CHECK_S=0.0,
    )
    engine = replicas.of(replica_app).engine
    deadline = time.monotonic() + 30
    while True:  # the run's database reaches the replica by streaming, a moment after its making
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1 FROM alembic_version")
            break
        except sa.exc.DBAPIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with replica_app.app_context():  # past the run's migrations and demo data
        until(replicas.of(replica_app).caught_up_with_primary, 60)
    yield replica_app
    engine.dispose()
    release(replica_app)


@pytest.fixture
def replica_client(replica_app):
    return english(replica_app.test_client())


@pytest.fixture(autouse=True)
def _replica_trusted_again(monkeypatch):
    # A replica found down is tried again after DOWN_FOR_S: at once here, and each test starts
    # with no verdict.
    monkeypatch.setattr(replicas, "DOWN_FOR_S", 0.0)


@pytest.fixture
def statements(replica_app):
    """The statements each engine ran meanwhile: statements("replica"), statements("primary")."""
    seen: dict[str, list[str]] = {"replica": [], "primary": []}
    with replica_app.app_context():
        engines = {"replica": replicas.of(replica_app).engine, "primary": db.engine}

    def recorder(name):
        return lambda _c, _cur, statement, *_a: seen[name].append(statement)

    listeners = [(engine, recorder(name)) for name, engine in engines.items()]
    for engine, listener in listeners:
        sa.event.listen(engine, "before_cursor_execute", listener)
    yield lambda name: list(seen[name])
    for engine, listener in listeners:
        sa.event.remove(engine, "before_cursor_execute", listener)


@pytest.fixture
def owner(owner_database_url) -> Iterator[sa.Connection]:
    engine = sa.create_engine(owner_database_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


@pytest.fixture
def grid_staff(replica_app, owner) -> Iterator[dict[str, str]]:
    """A committed grid staff account of 南郎家园社区 and its bearer header."""
    user_id = uuid.uuid4()
    with replica_app.app_context():
        insert_user(
            owner,
            id=user_id,
            phone=f"139{user_id.int % 10**8:08d}",
            name="副本测试",
            roles=["grid_staff"],
            status="active",
        )
        owner.execute(
            sa.text(
                "INSERT INTO user_areas (user_id, area_id) "
                "SELECT :u, id FROM areas WHERE code = '110105001024'"
            ),
            {"u": user_id},
        )
        token = signed_in(owner, replica_app, user_id)
    owner.commit()
    yield {"Authorization": f"Bearer {token}"}
    forget_users(owner, [user_id])
    owner.commit()


def commit_something(owner: sa.Connection) -> None:
    """A commit on the primary that changes nothing: its WAL moves on."""
    owner.execute(sa.text("UPDATE alembic_version SET version_num = version_num"))
    owner.commit()


def until(condition, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@contextlib.contextmanager
def replay_paused() -> Iterator[None]:
    db_sh("replay", "test-replica", "pause")
    try:
        yield
    finally:
        db_sh("replay", "test-replica", "resume")


@contextlib.contextmanager
def replica_stopped() -> Iterator[None]:
    db_sh("stop", "test-replica")
    try:
        yield
    finally:
        db_sh("replica", "test")


def answered_by(client, url: str = HEATMAP, **kwargs) -> str:
    response = client.get(url, **kwargs)
    assert response.status_code == 200, response.get_json()
    return response.headers[HEADER]


def test_the_public_heatmap_answers_from_a_fresh_replica(replica_client, statements):
    # The replica was just made (this module's first test): on a loaded machine it may still be
    # more than REPLICA_MAX_LAG_S behind (then the primary answers, rightly).
    until(lambda: answered_by(replica_client) == "replica")
    replica_before, primary_before = len(statements("replica")), len(statements("primary"))
    response = replica_client.get(HEATMAP)
    assert response.status_code == 200
    assert response.headers[HEADER] == "replica"
    assert any("FROM tips" in s for s in statements("replica")[replica_before:])
    assert not any("FROM tips" in s for s in statements("primary")[primary_before:])


def test_a_staff_aggregate_reads_on_the_replica_and_signs_the_caller_in_on_the_primary(
    replica_client, grid_staff, statements
):
    # The staff member's account was just committed on the primary: on a loaded machine the
    # replica may still be more than REPLICA_MAX_LAG_S behind (then the primary answers, rightly).
    until(lambda: answered_by(replica_client) == "replica")
    response = replica_client.get("/api/v1/grid/tips", headers=grid_staff)
    assert response.status_code == 200, response.get_json()
    assert response.headers[HEADER] == "replica"
    assert any("FROM tips" in s for s in statements("replica"))
    # A session revoked a moment ago is refused at once: the caller is loaded on the primary.
    assert any("auth_sessions" in s for s in statements("primary"))
    assert not any("auth_sessions" in s for s in statements("replica"))


def test_a_lagging_replica_leaves_the_heavy_reads_to_the_primary(replica_client, owner, statements):
    assert answered_by(replica_client) == "replica"
    with replay_paused():
        commit_something(owner)  # the primary moves on; the replica does not replay it
        time.sleep(1.2)  # past REPLICA_MAX_LAG_S
        assert answered_by(replica_client) == "primary"
        assert any("FROM tips" in s for s in statements("primary"))
    until(lambda: answered_by(replica_client) == "replica")


def test_an_idle_primary_keeps_its_replica_fresh_however_old_its_last_commit(replica_client, owner):
    commit_something(owner)
    until(lambda: answered_by(replica_client) == "replica")
    time.sleep(1.5)  # the last replayed commit is now older than REPLICA_MAX_LAG_S
    assert answered_by(replica_client) == "replica"


def test_a_stopped_replica_leaves_the_heavy_reads_to_the_primary(replica_client):
    assert answered_by(replica_client) == "replica"
    with replica_stopped():
        assert answered_by(replica_client) == "primary"
    until(lambda: answered_by(replica_client) == "replica")


def test_a_replica_lost_after_its_check_fails_over_within_the_request(
    replica_app, replica_client, monkeypatch
):
    replica = replicas.of(replica_app)
    monkeypatch.setattr(replica, "check_s", 60.0)  # the verdict "fresh" outlives the replica
    monkeypatch.setattr(replica, "_verdict", None)
    assert answered_by(replica_client) == "replica"
    with replica_stopped():
        replica.engine.dispose()  # no pooled connection survives a stop anyway
        assert answered_by(replica_client) == "primary"
    monkeypatch.setattr(replica, "_verdict", None)
    until(lambda: answered_by(replica_client) == "replica")


def test_writes_never_go_to_the_replica(replica_app, replica_client, grid_staff, statements):
    # Other routes run everything on the primary and say nothing: signing out writes.
    response = replica_client.post("/api/v1/auth/logout", headers=grid_staff)
    assert response.status_code == 204, response.get_json()
    assert HEADER not in response.headers
    assert statements("replica") == []
    assert any(s.startswith(("UPDATE", "DELETE")) for s in statements("primary"))
    # Inside a heavy view, only plain SELECTs go there.
    replica = replicas.of(replica_app)
    with replica_app.test_request_context("/"):
        setattr(g, replicas.ROUTING, replica.engine)
        users = sa.table("users", sa.column("id"))
        assert db.session.get_bind(clause=sa.select(users)) is replica.engine
        for statement in (
            sa.select(users).with_for_update(),
            sa.insert(users),
            sa.update(users),
            sa.delete(users),
            sa.text("SELECT 1"),
        ):
            assert db.session.get_bind(clause=statement) is not replica.engine, statement
    assert reads_only(sa.union(sa.select(users), sa.select(users)))


def test_a_heavy_route_without_a_replica_says_the_primary_answered(client):
    assert answered_by(client) == "primary"
    assert HEADER not in client.get("/api/v1/tip-categories").headers


def test_jobs_read_on_the_replica_only_once_it_has_replayed_their_cause(
    replica_app, owner, monkeypatch
):
    monkeypatch.setattr(replicas, "JOB_CATCH_UP_WAIT_S", 0.3)
    replica = replicas.of(replica_app)
    with replica_app.app_context():
        commit_something(owner)
        with replicas.reading_session(db.session, "test") as reader:
            assert reader.get_bind().url == replica.engine.url
            assert reader.execute(sa.text("SELECT pg_is_in_recovery()")).scalar()
        with replay_paused():
            commit_something(owner)
            with replicas.reading_session(db.session, "test") as reader:
                assert reader is db.session
        db.session.remove()


def test_the_heavy_routes_are_the_reads_the_issue_names(app):
    heavy = set()
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            target = getattr(view_class, method.lower(), None) if view_class else view
            if getattr(target, replicas.HEAVY_READ_ATTR, False):
                assert method == "GET", rule.rule
                heavy.add(rule.rule)
    assert heavy == {
        "/api/v1/grid/tips",
        "/api/v1/grid/tips/<string:cell>/series",
        "/api/v1/grid/hotspots",
        "/api/v1/grid/risk-coverage",
        "/api/v1/public/heatmap",
        "/api/v1/coverage/cells",
        "/api/v1/coverage/gaps",
        "/api/v1/checkpoints/compliance",
        "/api/v1/stations/export",
    }
