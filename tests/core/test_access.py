"""Who may call what: every route declares it, and the declaration is enforced."""

from __future__ import annotations

import pytest

from app.core.auth import ROLES, effective_roles
from app.core.blueprint import access_of

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def undeclared(app) -> list[str]:
    missing = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - IGNORED_METHODS):
            if access_of(rule.endpoint, view, method) is None:
                missing.append(f"{method} {rule.rule}")
    return missing


def role_rules(app):
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - IGNORED_METHODS):
            access = access_of(rule.endpoint, view, method)
            # Console pages take a session cookie, not a bearer token: tests/console/ walks them.
            if access is not None and access.kind not in ("public", "session"):
                yield rule, method, access


def test_every_route_of_the_application_declares_who_may_call_it(app):
    assert undeclared(app) == []


def test_a_route_without_a_declaration_is_caught(probe_app):
    assert undeclared(probe_app) == ["GET /api/v1/probe/undeclared"]


def sample_path(rule) -> str:
    values = {arg: "00000000-0000-4000-8000-000000000000" for arg in rule.arguments}
    return rule.build(values, append_unknown=False)[1]


def test_every_protected_route_refuses_callers_without_a_token(probe_app, app, probe_client):
    checked = 0
    for test_app in (app, probe_app):
        for rule, method, _access in role_rules(test_app):
            response = probe_client.open(sample_path(rule), method=method, json={})
            assert response.status_code == 401, f"{method} {rule.rule}"
            assert response.mimetype == "application/problem+json"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            checked += 1
    assert checked >= 3


def test_every_role_restricted_route_refuses_the_other_roles(
    probe_app, app, probe_client, token_for
):
    checked = 0
    for test_app in (app, probe_app):
        for rule, method, access in role_rules(test_app):
            if access.kind != "roles":
                continue
            for role in ROLES:
                if effective_roles([role]) & set(access.roles):
                    continue
                response = probe_client.open(
                    sample_path(rule), method=method, json={}, headers=token_for(role)
                )
                assert response.status_code == 403, f"{role}: {method} {rule.rule}"
                checked += 1
    assert checked > 0


@pytest.mark.parametrize("role", ["grid_staff", "community_admin", "admin"])
def test_staff_roles_include_grid_staff_rights(probe_client, token_for, role):
    assert probe_client.get("/api/v1/probe/staff", headers=token_for(role)).status_code == 200


@pytest.mark.parametrize("role", ["volunteer", "police_liaison"])
def test_non_staff_roles_are_forbidden_staff_routes(probe_client, token_for, role):
    assert probe_client.get("/api/v1/probe/staff", headers=token_for(role)).status_code == 403


def test_a_forged_token_is_refused(probe_client, token_for):
    header = token_for("admin")["Authorization"]
    forged = {"Authorization": header[:-4] + ("AAAA" if not header.endswith("AAAA") else "BBBB")}
    response = probe_client.get("/api/v1/probe/signed-in", headers=forged)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_any_valid_token_passes_login_required(probe_client, token_for):
    assert (
        probe_client.get("/api/v1/probe/signed-in", headers=token_for("volunteer")).status_code
        == 200
    )


def test_the_spec_documents_the_access_rule(probe_app):
    spec = probe_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    staff = spec["paths"]["/api/v1/probe/staff"]["get"]
    assert staff["security"] == [{"bearerAuth": []}]
    assert {"401", "403"} <= set(staff["responses"])
    assert "grid_staff" in staff["description"]
    assert spec["paths"]["/healthz"]["get"]["security"] == []
