from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import make_app
from tests.core import probe


@pytest.fixture(scope="session")
def probe_app(app, database_url):
    """The application plus the test-only probe blueprint, on the same migrated database."""
    probe_app = make_app(database_url, MAX_CONTENT_LENGTH=4096)
    probe_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(probe.blp)
    return probe_app


@pytest.fixture
def probe_client(probe_app, app, connection):
    connection.execute(text("CREATE TEMP TABLE probe_writes (id serial PRIMARY KEY, name text)"))
    return probe_app.test_client()


@pytest.fixture
def probe_rows(connection):
    return lambda: (
        connection.execute(text("SELECT name FROM probe_writes ORDER BY id")).scalars().all()
    )
