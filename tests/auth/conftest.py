"""An app with the identity cache on, for the tests of a warm cache in a request (the suite's
app runs without it: AUTH_CACHE_SECONDS=0)."""

from __future__ import annotations

import pytest

from app.auth import identity_cache
from app.extensions import db
from tests.conftest import make_app
from tests.ops.processes import wait_until


@pytest.fixture(scope="module")
def cached_app(app, database_url):
    cached_app = make_app(database_url, AUTH_CACHE_SECONDS=60)
    yield cached_app
    with cached_app.app_context():
        identity_cache.close(db.engine.url)


@pytest.fixture
def cached_client(cached_app, connection):
    with cached_app.app_context():
        cache = identity_cache.for_database(db.engine.url)
    assert wait_until(lambda: cache.connected, timeout=10) is not None
    return cached_app.test_client()
