"""Open311's conventions at the edges: formats by suffix, errors in its format for unknown
paths and methods, and the interface kept out of our OpenAPI document."""

from __future__ import annotations

import pytest

from tests.open311.conftest import assert_open311_error

BASE = "/open311/v2"


@pytest.mark.parametrize(
    "path",
    ["services.yaml", "services.JSON", "services", "nowhere.json", "requests/abc", "a/b/c.txt"],
)
def test_unknown_paths_and_formats_are_an_open311_404(client, path):
    assert_open311_error(client.get(f"{BASE}/{path}"), 404)


def test_an_unknown_path_ending_in_xml_answers_in_xml(client):
    assert_open311_error(client.get(f"{BASE}/nowhere.xml"), 404, "xml")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "services.json", "GET, HEAD, OPTIONS"),
        ("POST", "services.xml", "GET, HEAD, OPTIONS"),
        ("PUT", "requests.json", "GET, HEAD, POST, OPTIONS"),
        ("PATCH", "requests/abc.xml", "GET, HEAD, OPTIONS"),
        ("POST", "tokens/abc.json", "GET, HEAD, OPTIONS"),
        ("DELETE", "discovery.xml", "GET, HEAD, OPTIONS"),
    ],
)
def test_other_methods_of_known_paths_are_an_open311_405(client, method, path, allowed):
    response = client.open(f"{BASE}/{path}", method=method)
    assert_open311_error(response, 405, path.rpartition(".")[2])
    assert response.headers["Allow"] == allowed


def test_options_names_the_methods_of_a_path(client):
    response = client.options(f"{BASE}/requests.json")
    assert response.status_code == 200
    assert response.headers["Allow"] == "GET, HEAD, POST, OPTIONS"
    assert client.options(f"{BASE}/services/traffic.xml").headers["Allow"] == ("GET, HEAD, OPTIONS")
    assert_open311_error(client.options(f"{BASE}/nowhere.json"), 404)


def test_head_answers_like_get_without_a_body(client):
    response = client.head(f"{BASE}/services.xml")
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.data == b""


def test_a_body_over_the_size_limit_is_an_open311_413(client, api_key):
    response = client.post(
        f"{BASE}/requests.xml", data={"api_key": api_key, "description": "x" * 2_000_000}
    )
    assert_open311_error(response, 413, "xml")


def test_open311_stays_out_of_our_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["paths"]
    assert not [path for path in spec["paths"] if "open311" in path]


def test_every_open311_route_declares_public_access(app):
    from app.core.blueprint import access_of

    rules = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith(BASE)]
    assert len(rules) == 7
    for rule in rules:
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            access = access_of(rule.endpoint, app.view_functions[rule.endpoint], method)
            assert access is not None, f"{method} {rule.rule}"
            assert access.kind == "public"
