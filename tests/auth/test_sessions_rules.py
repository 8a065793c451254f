"""The rules of app/auth/tokens.py, stated directly: which decoded claims are ours (any one claim
of another shape, or missing, and the token is refused), and which lookups the identity cache
may answer (access tokens while AUTH_CACHE_SECONDS > 0; a refresh token never)."""

from __future__ import annotations

import uuid

import pytest
from flask_jwt_extended import decode_token
from hypothesis import given
from hypothesis import strategies as st

from app.auth.tokens import claims_are_ours
from tests.conftest import PASSWORD

CLAIMS = ("sub", "sid", "jti", "type", "fresh", "roles")


def _is_uuid_text(value) -> bool:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


uuid_text = st.uuids().map(str)
ours = st.fixed_dictionaries(
    {
        "sub": uuid_text,
        "sid": uuid_text,
        "jti": uuid_text,
        "type": st.sampled_from(["access", "refresh"]),
        "fresh": st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False)),
        "roles": st.lists(st.text(max_size=20), max_size=4),
    }
)
not_a_uuid = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.lists(st.text(max_size=5), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.text(max_size=40).filter(lambda s: not _is_uuid_text(s)),
)
WRONG = {
    "sub": not_a_uuid,
    "sid": not_a_uuid,
    "jti": not_a_uuid,
    "type": st.one_of(
        st.text(max_size=12).filter(lambda s: s not in ("access", "refresh")),
        st.just(["access"]),
        st.none(),
        st.integers(),
    ),
    "fresh": st.one_of(st.none(), st.text(max_size=5), st.lists(st.booleans(), max_size=2)),
    "roles": st.one_of(
        st.text(max_size=10),
        st.none(),
        st.integers(),
        st.lists(st.one_of(st.integers(), st.none()), min_size=1, max_size=3),
        st.lists(st.text(max_size=5), max_size=2).map(lambda r: [*r, 7]),
    ),
}


@given(payload=ours)
def test_claims_of_the_shapes_our_tokens_have_are_ours(payload):
    assert claims_are_ours(payload)


@given(payload=ours, name=st.sampled_from(CLAIMS), data=st.data())
def test_one_claim_of_another_shape_and_the_claims_are_not_ours(payload, name, data):
    """Whichever claim it is, and whatever the others are: one wrong claim refuses the token."""
    payload[name] = data.draw(WRONG[name], label=name)
    assert not claims_are_ours(payload)


@given(payload=ours, name=st.sampled_from([c for c in CLAIMS if c != "roles"]))
def test_one_claim_missing_and_the_claims_are_not_ours(payload, name):
    del payload[name]
    assert not claims_are_ours(payload)


def test_roles_may_be_left_out():
    payload = {
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "jti": str(uuid.uuid4()),
        "type": "access",
        "fresh": False,
    }
    assert claims_are_ours(payload)


# --- which lookups the identity cache answers ---------------------------------------------------


def _lookups(statements: list[str]) -> list[str]:
    """The token lookups (app.auth.service.live_user) among `statements`."""
    return [s for s in statements if "FROM users JOIN auth_sessions" in s]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def signed_in(cached_client, create_user):
    """A token pair of a fresh session, signed in through the cached app."""

    def make():
        user = create_user(phone=f"137{uuid.uuid4().int % 10**8:08d}")
        response = cached_client.post(
            "/api/v1/auth/login", json={"phone": user.phone, "password": PASSWORD}
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return make


def test_a_refresh_token_is_looked_up_in_the_database_even_when_its_session_is_cached(
    cached_client, client, signed_in, count_queries
):
    """A refresh is spent once: whether its session is live is read from the database, as in an
    app without the cache, never from a cached entry."""
    cached_pair = signed_in()
    assert cached_client.get("/api/v1/me", headers=_bearer(cached_pair["access_token"])).json
    with count_queries() as with_cache:
        refreshed = cached_client.post(
            "/api/v1/auth/refresh", headers=_bearer(cached_pair["refresh_token"])
        )
    assert refreshed.status_code == 200, refreshed.get_json()
    uncached_pair = signed_in()
    with count_queries() as without_cache:
        response = client.post(
            "/api/v1/auth/refresh", headers=_bearer(uncached_pair["refresh_token"])
        )
    assert response.status_code == 200, response.get_json()
    assert len(_lookups(without_cache)) >= 1
    assert len(_lookups(with_cache)) == len(_lookups(without_cache))


@pytest.mark.parametrize("seconds", [1, 60, 600])
def test_any_positive_cache_time_answers_a_cached_access_token_without_a_lookup(
    cached_client, cached_app, signed_in, count_queries, monkeypatch, seconds
):
    pair = signed_in()
    assert cached_client.get("/api/v1/me", headers=_bearer(pair["access_token"])).json  # the miss
    monkeypatch.setitem(cached_app.config, "AUTH_CACHE_SECONDS", seconds)
    with count_queries() as statements:
        response = cached_client.get("/api/v1/me", headers=_bearer(pair["access_token"]))
    assert response.status_code == 200
    assert _lookups(statements) == []


def test_a_cache_time_of_0_turns_the_cache_off_at_once(
    cached_client, cached_app, signed_in, count_queries, monkeypatch
):
    """Even an entry already cached is not used: every access token is read from the database."""
    pair = signed_in()
    headers = _bearer(pair["access_token"])
    assert cached_client.get("/api/v1/me", headers=headers).status_code == 200  # now cached
    monkeypatch.setitem(cached_app.config, "AUTH_CACHE_SECONDS", 0)
    with count_queries() as statements:
        response = cached_client.get("/api/v1/me", headers=headers)
    assert response.status_code == 200
    assert len(_lookups(statements)) == 1
    assert response.get_json()["id"] == decode_token(pair["access_token"])["sub"]
