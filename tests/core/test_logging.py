"""JSON logs with a request id; no addresses, query strings or concrete paths in them."""

from __future__ import annotations

import io
import json
import logging

import pytest

from app.core.logging import RedactAddresses, configure_logging, gunicorn_log_config


@pytest.fixture
def log_lines():
    configure_logging("INFO")
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_qunfang", False))
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    handler.setStream(previous)


def test_each_request_logs_one_json_line_with_its_request_id(client, log_lines):
    response = client.get("/healthz")
    access = [line for line in log_lines() if line["logger"] == "qunfang.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == response.headers["X-Request-ID"]
    assert access[0]["status"] == 200
    assert access[0]["route"] == "/healthz"
    assert access[0]["level"] == "INFO"
    assert "time" in access[0]


def test_a_well_formed_incoming_request_id_is_kept(client):
    response = client.get("/healthz", headers={"X-Request-ID": "edge-proxy.42"})
    assert response.headers["X-Request-ID"] == "edge-proxy.42"


def test_a_malformed_incoming_request_id_is_replaced(client):
    response = client.get("/healthz", headers={"X-Request-ID": "bad id <script>"})
    assert response.headers["X-Request-ID"] != "bad id <script>"
    assert len(response.headers["X-Request-ID"]) == 32


def test_logs_hold_no_client_address_query_or_concrete_path(client, log_lines):
    client.get(
        "/api/v1/nothing/13800138000?lon=116.4&lat=39.9",
        environ_base={"REMOTE_ADDR": "203.0.113.77"},
        headers={"X-Forwarded-For": "198.51.100.9"},
    )
    text = json.dumps(log_lines())
    for secret in ("203.0.113.77", "198.51.100.9", "13800138000", "116.4", "lon="):
        assert secret not in text


@pytest.mark.parametrize(
    "message",
    [
        "Invalid request from ip=203.0.113.77: Invalid HTTP request line",
        "Invalid request from ip=2001:db8::8a2e:370:7334: bad header",
        "peer ::ffff:198.51.100.9 closed",
    ],
)
def test_addresses_are_redacted_from_server_logs(message):
    record = logging.LogRecord("gunicorn.error", logging.WARNING, __file__, 1, message, None, None)
    RedactAddresses().filter(record)
    text = record.getMessage()
    assert "[address]" in text
    for fragment in ("203.0.113.77", "2001:db8", "198.51.100.9"):
        assert fragment not in text


def test_times_and_versions_are_not_taken_for_addresses():
    message = "worker 12:30:45 booted, version 3.10.0.1 on 2026-11-22"
    record = logging.LogRecord("gunicorn.error", logging.INFO, __file__, 1, message, None, None)
    RedactAddresses().filter(record)
    assert record.getMessage() == message.replace("3.10.0.1", "[address]")


def test_gunicorn_logs_go_through_the_redaction():
    config = gunicorn_log_config()
    handler = config["handlers"][config["loggers"]["gunicorn.error"]["handlers"][0]]
    assert "redact" in handler["filters"]
    assert config["loggers"]["gunicorn.access"]["handlers"] == []


def test_gunicorn_accepts_the_log_configuration():
    """gunicorn merges logconfig_dict into its defaults and hands it to dictConfig."""
    from logging.config import dictConfig

    from gunicorn.glogging import CONFIG_DEFAULTS

    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        dictConfig({**CONFIG_DEFAULTS, **gunicorn_log_config()})
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
