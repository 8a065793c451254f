"""Behind a real PgBouncer in transaction mode (scripts/pgbouncer.sh): the traps of a pooler that
hands each transaction whichever server connection is free.

`make test-pgbouncer` runs a slice of the suite (tips, tasks, exports and these) with the
application behind it; `make test` runs these, starting the test cluster's PgBouncer for them.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

from app.auth import identity_cache, tokens
from app.config import PROJECT_ROOT, Config, ConfigError
from app.core import jobs
from app.extensions import db
from tests.conftest import TEST_CLUSTER_URL_FILE, as_app, make_app, server_url, through_pooler
from tests.encrypted_rows import release

PGBOUNCER_SH = str(PROJECT_ROOT / "scripts" / "pgbouncer.sh")
PGBOUNCER_URL_FILE = PROJECT_ROOT / "var" / "pgbouncer" / "test.app.url"


def pgbouncer(*args: str) -> None:
    subprocess.run([PGBOUNCER_SH, *args], check=True, capture_output=True, timeout=300)  # noqa: S603


@pytest.fixture(scope="module")
def pooled_url(database_url) -> Iterator[str]:
    """The run's database as the application's role, through the test cluster's PgBouncer."""
    cluster_url = (
        TEST_CLUSTER_URL_FILE.read_text().strip() if TEST_CLUSTER_URL_FILE.exists() else ""
    )
    if server_url() != cluster_url:
        pytest.skip("PgBouncer is started in front of the private test cluster only")
    already = (
        subprocess.run([PGBOUNCER_SH, "running", "test"], check=False).returncode == 0  # noqa: S603
    )
    pgbouncer("ensure", "test")
    try:
        yield through_pooler(database_url, PGBOUNCER_URL_FILE.read_text().strip())
    finally:
        if not already:
            pgbouncer("stop", "test")


def pooled_app(database_url: str, pooled_url: str, **overrides):
    return make_app(
        database_url,
        SQLALCHEMY_DATABASE_URI=pooled_url,
        DATABASE_POOLER="pgbouncer",
        DATABASE_DIRECT_URL=as_app(database_url),
        **overrides,
    )


def _alternate(run_on_a, a_pid, b: psycopg.Connection, times: int = 6) -> set[int]:
    """Run `run_on_a` `times` times while `b` takes the server connection `a` just left, so
    that each run of `a` lands on another server connection; the server pids `a` was given."""
    pids = set()
    for _ in range(times):
        run_on_a()
        pids.add(a_pid())
        b.execute("SELECT 1")  # b's transaction now holds the server a released last
        run_on_a()
        pids.add(a_pid())
        b.rollback()
    return pids


def test_repeated_statements_survive_changing_server_connections(app, database_url, pooled_url):
    pooled = pooled_app(database_url, pooled_url)
    statement = sa.text("SELECT count(*) FROM areas WHERE level = :level")
    try:
        with (
            pooled.app_context(),
            db.engine.connect() as a,
            psycopg.connect(jobs.libpq_conninfo(pooled_url), prepare_threshold=None) as b,
        ):

            def run_on_a():
                assert a.execute(statement, {"level": "subdistrict"}).scalar() == 43
                a.commit()

            def a_pid():
                pid = a.execute(sa.text("SELECT pg_backend_pid()")).scalar()
                a.commit()
                return pid

            assert len(_alternate(run_on_a, a_pid, b)) > 1  # a did change servers
    finally:
        release(pooled)


def test_psycopgs_default_prepared_statements_break_behind_the_pooler(pooled_url):
    # What DATABASE_POOLER=pgbouncer avoids: a statement prepared on one server connection is
    # run by name on another.
    with (
        psycopg.connect(jobs.libpq_conninfo(pooled_url), prepare_threshold=0) as a,
        psycopg.connect(jobs.libpq_conninfo(pooled_url), prepare_threshold=None) as b,
    ):

        def run_on_a():
            a.execute("SELECT count(*) FROM areas WHERE level = %s", ["subdistrict"])
            a.commit()

        with pytest.raises(psycopg.errors.Error, match="prepared statement"):
            _alternate(run_on_a, lambda: 0, b)


def test_a_workers_long_timeouts_stay_inside_its_transactions(app, database_url, pooled_url):
    worker = pooled_app(database_url, pooled_url)
    web = pooled_app(database_url, pooled_url)
    show = sa.text("SELECT current_setting('statement_timeout'), pg_backend_pid()")
    try:
        jobs._bound_job_statements(worker)
        with worker.app_context():
            timeout, worker_pid = db.session.execute(show).one()
            db.session.commit()
        assert timeout == "15min"
        with web.app_context(), db.engine.connect() as conn:
            timeout, web_pid = conn.execute(show).one()
        assert web_pid == worker_pid  # the pooler gave the web the worker's server connection
        assert timeout == "15s"  # ... without the worker's setting
    finally:
        release(worker)
        release(web)


def test_a_pooled_deployment_names_a_direct_url_for_listen():
    with pytest.raises(ConfigError, match="DATABASE_DIRECT_URL"):
        Config.from_env(
            SQLALCHEMY_DATABASE_URI="postgresql+psycopg://u:p@127.0.0.1:6432/qunfang",
            DATABASE_POOLER="pgbouncer",
        )


def test_the_identity_cache_listens_without_the_pooler(app, database_url, pooled_url):
    pooled = pooled_app(database_url, pooled_url, AUTH_CACHE_SECONDS=60)
    direct = sa.engine.make_url(as_app(database_url))
    try:
        with pooled.app_context():
            payload = {"type": "access", "sub": str(uuid.uuid4()), "sid": str(uuid.uuid4())}
            assert tokens._live_user(payload) is None
        assert identity_cache._key(direct) in identity_cache._registry
        assert identity_cache._key(sa.engine.make_url(pooled_url)) not in identity_cache._registry
    finally:
        identity_cache.close(direct)
        release(pooled)
