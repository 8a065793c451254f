"""Roles and the caller's identity, from the bearer token (flask-jwt-extended).

A token carries the user id as `sub` and its login session as `sid`; verifying it loads the
user (app/auth/tokens.py), whose roles are what counts. Roles nest:
an admin has every staff right, a community admin has grid staff rights (ARCHITECTURE.md, §4);
volunteers and police liaisons are their own branches.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import request
from flask_jwt_extended import get_current_user, get_jwt_identity, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError

VOLUNTEER = "volunteer"
GRID_STAFF = "grid_staff"
COMMUNITY_ADMIN = "community_admin"
POLICE_LIAISON = "police_liaison"
ADMIN = "admin"

ROLES = (VOLUNTEER, GRID_STAFF, COMMUNITY_ADMIN, POLICE_LIAISON, ADMIN)

# The roles whose rights a role includes.
_IMPLIES = {
    VOLUNTEER: {VOLUNTEER},
    GRID_STAFF: {GRID_STAFF},
    COMMUNITY_ADMIN: {COMMUNITY_ADMIN, GRID_STAFF},
    POLICE_LIAISON: {POLICE_LIAISON},
    ADMIN: {ADMIN, COMMUNITY_ADMIN, GRID_STAFF},
}


def effective_roles(roles: Iterable[str]) -> set[str]:
    """Every role a holder of `roles` may act as; unknown role names grant nothing."""
    granted: set[str] = set()
    for role in roles:
        granted |= _IMPLIES.get(role, set())
    return granted


def has_any_role(held: Iterable[str], required: Iterable[str]) -> bool:
    return bool(effective_roles(held) & set(required))


def current_identity() -> str | None:
    """The caller's user id when a valid token came with the request, else None (never raises)."""
    try:
        verify_jwt_in_request(optional=True)
    except (JWTExtendedException, PyJWTError):
        return None
    identity = get_jwt_identity()
    return str(identity) if identity is not None else None


def optional_user():
    """The signed-in user when a token came, else None. Unlike `current_identity`, a token
    that came but is not valid (expired, revoked) is a 401: a caller who meant to act as
    themselves must not be served as anonymous by accident."""
    if "Authorization" not in request.headers:
        return None
    verify_jwt_in_request()
    return get_current_user()


def current_user():
    """The signed-in user of this request, loaded when the token was verified: from the
    database, or from this process's identity cache, which every change to the account, its
    sessions or its areas clears at once (app/auth/identity_cache.py), so role and status
    changes apply at once. Call after verification."""
    return get_current_user()


def current_roles() -> list[str]:
    """The current roles of the signed-in user (not the token's copy, which may be stale)."""
    user = get_current_user()
    return list(user.roles) if user is not None else []
