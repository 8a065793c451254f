"""Property-based checks of every operation in /api/v1/openapi.json: no 5xx, and responses
conform to the spec (status codes, content types, headers, bodies). New endpoints are picked up
automatically.

Left out: "schema-valid data must be accepted". Our rules go beyond what a schema can say (ID
number checksums, areas that must exist, jurisdiction), so a 422 for such data is correct.
"""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance


@pytest.fixture
def api_schema(app, connection):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.fixture
def probe_api_schema(probe_client, probe_app):
    """The shared machinery (parsing, validation, access, idempotency) under the same checks;
    the probe's deliberately failing and rate-limited routes are left out."""
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", probe_app)


@pytest.fixture
def admin_headers(token_for):
    return token_for("admin")


def fresh_key(case) -> dict[str, str]:
    """A well-formed generated Idempotency-Key becomes a new UUID: generated keys repeat across
    examples with different bodies, which is a (correct) 422 that the positive-data check would
    flag. Malformed keys (negative cases) are kept."""
    key = (case.headers or {}).get("Idempotency-Key")
    if key is not None and re.fullmatch(r"[\x21-\x7e]{8,255}", key):
        return {"Idempotency-Key": str(uuid.uuid4())}
    return {}


@contextmanager
def server_tracebacks() -> Iterator[None]:
    """A failure of the call carries the tracebacks the application logged meanwhile: a 500
    found by a generated example (seen in clean-clone CI runs only) is then explained in the
    test's own output, not lost with the server's log."""
    logged: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = logged.append
    errors = logging.getLogger()  # ours (app.core.errors) and Flask's (an error in a handler)
    errors.addHandler(handler)
    try:
        yield
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is the latter
        found = [r for r in logged if r.exc_info]
        if not found:
            raise
        text = "".join("".join(traceback.format_exception(*r.exc_info)) for r in found)
        raise AssertionError(f"{exc}\n\nThe server logged:\n{text}") from exc
    finally:
        errors.removeHandler(handler)


schema = schemathesis.pytest.from_fixture("api_schema")
probe_schema = schemathesis.pytest.from_fixture("probe_api_schema").exclude(
    path_regex=r".*/(boom|limited|db-failure)$"
)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_spec(case):
    excluded = [positive_data_acceptance]
    if case.media_type == "multipart/form-data":
        # A negative multipart example can serialize to a valid upload: one run sent "violates
        # `required` (was file)" as a single well-formed `file` part holding a PNG, and our 201
        # was flagged. Bad multipart bodies have their own tests (tests/media/test_routes.py,
        # tests/test_hostile_input.py); every other check still runs on them.
        excluded.append(negative_data_rejection)
    with server_tracebacks():
        case.call_and_validate(headers=fresh_key(case), excluded_checks=excluded)


@probe_schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_shared_machinery_conforms_to_the_spec(case, admin_headers):
    """Signed in as an admin, so that requests get past authentication to parsing,
    validation, idempotency and the views."""
    # The probe app's 4 KiB body limit answers 413 to large generated bodies, which the
    # negative-data check does not expect.
    with server_tracebacks():
        case.call_and_validate(
            headers={**admin_headers, **fresh_key(case)},
            excluded_checks=[positive_data_acceptance, negative_data_rejection],
        )
