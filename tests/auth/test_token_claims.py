"""Tokens signed with our key but with claims of the wrong type or missing: a 401 wherever a
token is read (issue 14: `"sid": 5` was an AttributeError, a 500)."""

from __future__ import annotations

import uuid

import jwt
import pytest
from flask_jwt_extended import create_access_token, create_refresh_token

from app.auth.models import AuthSession
from tests.tips.conftest import tip_body

PROBLEM = "application/problem+json"


@pytest.fixture
def signed(app, session, create_user):
    """signed(claims, refresh=False): a token for a live session of an admin, signed with our
    key, with `claims` replacing ours (None: leave the claim out)."""
    user = create_user(roles=["admin", "volunteer"])
    auth_session = AuthSession(id=uuid.uuid4(), user_id=user.id)
    session.add(auth_session)
    session.commit()

    def make(claims, refresh=False):
        ours = {"sid": str(auth_session.id), "roles": ["admin", "volunteer"]}
        ours.update(claims)
        make_token = create_refresh_token if refresh else create_access_token
        with app.app_context():
            token = make_token(identity=str(user.id), additional_claims=ours)
        if any(value is None for value in claims.values()):
            token = _without(app, token, [k for k, v in claims.items() if v is None])
        return {"Authorization": f"Bearer {token}"}

    return make


def _without(app, token, names):
    """`token` signed again (HS256, our key) without the claims `names`."""
    key = app.config["JWT_SECRET_KEY"]
    payload = jwt.decode(token, key, algorithms=["HS256"])
    for name in names:
        payload.pop(name, None)
    return jwt.encode(payload, key, algorithm="HS256")


WRONG_CLAIMS = [
    {"sid": 5},
    {"sid": 0},
    {"sid": ["x"]},
    {"sid": {"id": 1}},
    {"sid": 1.5},
    {"sid": "not-a-uuid"},
    {"sid": None},
    {"jti": 7},
    {"jti": "not-a-uuid"},
    {"type": ["access"]},
    {"type": "id_token"},
    {"fresh": "yes"},
    {"roles": "admin"},
    {"roles": [1]},
]


@pytest.mark.parametrize("claims", WRONG_CLAIMS, ids=repr)
def test_a_token_with_wrong_claims_is_a_401_wherever_it_is_read(client, signed, claims, ledger):
    headers = {**signed(claims), "Accept-Language": "en"}
    for method, path, body in (
        ("get", "/api/v1/me", None),  # any signed-in user
        ("get", "/api/v1/tips", None),  # a role
        ("post", "/api/v1/tips", tip_body()),  # public, but a token that came must be valid
        ("post", "/api/v1/auth/logout", None),
    ):
        response = client.open(path, method=method.upper(), json=body, headers=headers)
        assert response.status_code == 401, (method, path, response.get_data(as_text=True))
        assert response.mimetype == PROBLEM
        # Refused for its claims (by the JWT library or by ours), before any lookup of the
        # session: never as a session that has ended.
        assert "the session has ended" not in response.json["detail"], response.json
    assert ledger.changes() == []


@pytest.mark.parametrize("claims", [{"sid": 5}, {"jti": "not-a-uuid"}], ids=repr)
def test_a_refresh_token_with_wrong_claims_is_a_401(client, signed, claims, ledger):
    response = client.post("/api/v1/auth/refresh", headers=signed(claims, refresh=True))
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    assert ledger.changes() == []


def test_tokens_shaped_as_ours_pass(client, signed):
    assert client.get("/api/v1/me", headers=signed({})).status_code == 200
    assert client.get("/api/v1/tips", headers=signed({"fresh": True})).status_code == 200
