"""Every error answers application/problem+json, and bad input changes nothing."""

from __future__ import annotations

import json
import logging

from sqlalchemy import text

PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["title"]
    assert body["type"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_unknown_route_is_a_404_problem(client):
    assert_problem(client.get("/api/v1/no-such-thing"), 404)


def test_wrong_method_is_a_405_problem_with_allow(client):
    response = client.delete("/healthz")
    assert_problem(response, 405)
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "HEAD"}


def test_malformed_json_is_a_400_problem_and_writes_nothing(probe_client, token_for, probe_rows):
    response = probe_client.post(
        "/api/v1/probe/writes",
        data='{"name": "x",',
        content_type="application/json",
        headers=token_for("volunteer"),
    )
    body = assert_problem(response, 400)
    assert "not valid JSON" in body["detail"]
    assert probe_rows() == []


def test_wrong_content_type_is_a_415_problem(probe_client, token_for, probe_rows):
    response = probe_client.post(
        "/api/v1/probe/writes",
        data="name=x",
        content_type="application/x-www-form-urlencoded",
        headers=token_for("volunteer"),
    )
    body = assert_problem(response, 415)
    assert "application/json" in body["detail"]
    assert probe_rows() == []


def test_oversized_body_is_a_413_problem(probe_client, token_for, probe_rows):
    response = probe_client.post(
        "/api/v1/probe/writes",
        data=json.dumps({"name": "x" * 5000}),
        content_type="application/json",
        headers=token_for("volunteer"),
    )
    assert_problem(response, 413)
    assert probe_rows() == []


def test_validation_errors_are_listed_field_by_field(probe_client, token_for, probe_rows):
    response = probe_client.post(
        "/api/v1/probe/writes",
        json={"items": [{"lon": 200, "lat": 10}, {"lat": "north"}], "role": "admin"},
        headers=token_for("volunteer"),
    )
    body = assert_problem(response, 422)
    assert body["type"] == "urn:qunfang:problem:validation-error"
    pointers = {e["pointer"] for e in body["errors"]}
    assert {"/name", "/items/0/lon", "/items/1/lon", "/items/1/lat", "/role"} <= pointers
    assert all(e["location"] == "json" for e in body["errors"])
    assert probe_rows() == []


def test_unexpected_error_is_a_500_problem_without_internals(probe_client, caplog):
    with caplog.at_level(logging.ERROR):
        response = probe_client.get("/api/v1/probe/boom")
    body = assert_problem(response, 500)
    text = response.get_data(as_text=True)
    assert "secret internal detail" not in text
    assert "Traceback" not in text
    assert "detail" not in body
    assert any(r.getMessage() == "unhandled error" for r in caplog.records)


def test_domain_error_rolls_back_the_request(probe_client, token_for, probe_rows):
    response = probe_client.post(
        "/api/v1/probe/writes", json={"name": "conflict"}, headers=token_for("volunteer")
    )
    body = assert_problem(response, 409)
    assert body["detail"] == "the probe refuses this name"
    assert probe_rows() == []


def test_rate_limit_is_a_429_problem_with_retry_after(probe_client):
    statuses = [probe_client.get("/api/v1/probe/limited").status_code for _ in range(3)]
    assert statuses[:2] == [200, 200]
    response = probe_client.get("/api/v1/probe/limited")
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0


def test_deeply_nested_json_is_a_400_problem(probe_client, token_for, probe_rows):
    body = '{"name": ' + "[" * 2000 + "]" * 2000 + "}"  # under the probe's 4 KiB limit
    response = probe_client.post(
        "/api/v1/probe/writes",
        data=body,
        content_type="application/json",
        headers=token_for("volunteer"),
    )
    assert assert_problem(response, 400)["detail"] == "The request body is nested too deeply."
    assert probe_rows() == []


def test_a_statement_timeout_is_a_503_problem(probe_client):
    response = probe_client.get("/api/v1/probe/db-failure?kind=timeout")
    assert assert_problem(response, 503)["type"] == "urn:qunfang:problem:timed-out"
    assert response.headers["Retry-After"]


def test_a_serialization_failure_is_a_409_to_retry(probe_client):
    response = probe_client.get("/api/v1/probe/db-failure?kind=conflict")
    assert assert_problem(response, 409)["type"] == "urn:qunfang:problem:concurrent-update"


def test_database_errors_are_logged_without_row_values(probe_client, caplog):
    with caplog.at_level(logging.ERROR):
        response = probe_client.get("/api/v1/probe/db-failure?kind=unique")
    assert_problem(response, 500)
    records = [r for r in caplog.records if r.getMessage() == "unhandled database error"]
    assert len(records) == 1
    assert records[0].sqlstate == "23505"
    assert records[0].exc_info is None
    logged = " ".join(str(v) for v in vars(records[0]).values())
    assert "13800138000" not in logged


def test_a_value_the_database_cannot_store_is_a_422(
    probe_client, token_for, probe_rows, connection
):
    # The schema allows 50 characters; the column (here) takes 20. (A NUL, which no text
    # column takes, is refused before any schema: tests/core/test_untrusted_input.py.)
    connection.execute(text("ALTER TABLE probe_writes ALTER COLUMN name TYPE varchar(20)"))
    response = probe_client.post(
        "/api/v1/probe/writes", json={"name": "x" * 30}, headers=token_for("volunteer")
    )
    assert assert_problem(response, 422)["type"] == "urn:qunfang:problem:invalid-value"
    assert probe_rows() == []
