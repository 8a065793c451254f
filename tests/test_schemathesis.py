"""Property-based checks of every operation in /api/v1/openapi.json: no 5xx, and responses
conform to the spec. New endpoints are picked up automatically."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings


@pytest.fixture
def api_schema(app, connection):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.fixture
def probe_api_schema(probe_client, probe_app):
    """The shared machinery (parsing, validation, access, idempotency) under the same checks;
    the probe's deliberately failing and rate-limited routes are left out."""
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", probe_app)


schema = schemathesis.pytest.from_fixture("api_schema")
probe_schema = schemathesis.pytest.from_fixture("probe_api_schema").exclude(
    path_regex=r".*/(boom|limited)$"
)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_spec(case):
    case.call_and_validate()


@probe_schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_shared_machinery_conforms_to_the_spec(case):
    case.call_and_validate()
