"""The admin pages through the Flask client: accounts of the jurisdiction only, role changes
with the API's rules (refused with a clear message and nothing changed beyond the actor's
reach), the verification queue, the audit log for admins only, CSRF."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.auth.models import User
from app.core.audit import AuditEvent
from tests.console.conftest import csrf_of, sign_in

SUBDISTRICT = "110105001000"
COMMUNITY, NEIGHBOUR_COMMUNITY = "110105001024", "110105001025"


def token(console) -> str:
    return csrf_of(console.get("/console/login"))


@pytest.fixture
def community_admin(console, create_user):
    """A console signed in as the community admin of community 110105001024 (one level below
    the demo's sub-district community admin), and the user."""
    user = create_user(roles=["community_admin"], jurisdiction=[COMMUNITY])
    assert sign_in(console, user).status_code == 303
    return console, user


def roles_of(session, user) -> list[str]:
    session.expire_all()
    return list(session.scalar(sa.select(User.roles).where(User.id == user.id)))


def test_a_community_admin_sees_the_accounts_of_their_community_only(community_admin, create_user):
    console, _user = community_admin
    inside = create_user(home=COMMUNITY)
    beside = create_user(home=NEIGHBOUR_COMMUNITY)
    staff_beside = create_user(roles=["grid_staff"], jurisdiction=[NEIGHBOUR_COMMUNITY])
    html = console.get("/console/admin/users").get_data(as_text=True)
    assert str(inside.id) in html and inside.phone in html and inside.real_name in html
    assert str(beside.id) not in html and str(staff_beside.id) not in html
    assert console.get(f"/console/admin/users/{beside.id}").status_code == 404


def test_the_user_page_shows_the_id_number_masked_only(community_admin, create_user):
    console, _user = community_admin
    person = create_user(home=COMMUNITY, id_number_masked="110105********0012")
    html = console.get(f"/console/admin/users/{person.id}").get_data(as_text=True)
    assert "110105********0012" in html


def test_a_community_admin_changes_roles_inside_their_community(
    community_admin, create_user, session
):
    console, _user = community_admin
    person = create_user(home=COMMUNITY)
    answer = console.post(
        f"/console/admin/users/{person.id}",
        data={
            "roles": ["volunteer", "grid_staff"],
            "jurisdiction": [str(person_area) for person_area in [_area_id(session, COMMUNITY)]],
            "status": "active",
            "csrf_token": token(console),
        },
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)[:500]
    assert roles_of(session, person) == ["grid_staff", "volunteer"]
    assert session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.action == "user.updated", AuditEvent.object_ids.contains([str(person.id)])
        )
    )


def _area_id(session, code: str):
    from app.areas.models import Area

    return session.scalar(sa.select(Area.id).where(Area.code == code))


def test_a_role_change_for_an_account_beyond_the_jurisdiction_is_refused_and_changes_nothing(
    community_admin, create_user, session
):
    console, _user = community_admin
    # Staff of both communities: visible (one area is inside), but not the admin's to change.
    both = create_user(roles=["grid_staff"], jurisdiction=[COMMUNITY, NEIGHBOUR_COMMUNITY])
    answer = console.post(
        f"/console/admin/users/{both.id}",
        data={
            "roles": ["community_admin"],
            "jurisdiction": [str(a.id) for a in both.jurisdiction],
            "status": "active",
            "csrf_token": token(console),
        },
    )
    assert answer.status_code == 403
    html = answer.get_data(as_text=True)
    assert 'id="user-message"' in html and "辖区" in html
    assert roles_of(session, both) == ["grid_staff"]


def test_granting_an_area_outside_the_jurisdiction_is_refused(
    community_admin, create_user, session
):
    console, _user = community_admin
    person = create_user(roles=["grid_staff"], jurisdiction=[COMMUNITY])
    answer = console.post(
        f"/console/admin/users/{person.id}",
        data={
            "roles": ["grid_staff"],
            "jurisdiction": [str(_area_id(session, NEIGHBOUR_COMMUNITY))],
            "status": "active",
            "csrf_token": token(console),
        },
    )
    assert answer.status_code == 403
    assert 'id="user-message"' in answer.get_data(as_text=True)
    session.expire_all()
    assert [a.code for a in session.get(User, person.id).jurisdiction] == [COMMUNITY]


def test_a_community_admin_may_not_grant_police_liaison(community_admin, create_user, session):
    console, _user = community_admin
    person = create_user(home=COMMUNITY)
    page = console.get(f"/console/admin/users/{person.id}").get_data(as_text=True)
    assert 'value="police_liaison"' not in page  # not offered
    answer = console.post(
        f"/console/admin/users/{person.id}",
        data={
            "roles": ["police_liaison"],
            "jurisdiction": [str(_area_id(session, COMMUNITY))],
            "status": "active",
            "csrf_token": token(console),
        },
    )
    assert answer.status_code == 403
    assert roles_of(session, person) == ["volunteer"]


def test_grid_staff_see_accounts_but_may_not_change_them(console, create_user, session):
    staff = create_user(roles=["grid_staff"], jurisdiction=[COMMUNITY])
    sign_in(console, staff)
    person = create_user(home=COMMUNITY)
    page = console.get(f"/console/admin/users/{person.id}").get_data(as_text=True)
    assert 'id="user-form"' not in page
    answer = console.post(
        f"/console/admin/users/{person.id}",
        data={"roles": ["grid_staff"], "status": "active", "csrf_token": token(console)},
    )
    assert answer.status_code == 403
    assert roles_of(session, person) == ["volunteer"]
    assert console.get("/console/admin/audit").status_code == 403


def test_a_role_change_without_the_csrf_token_changes_nothing(
    community_admin, create_user, session
):
    console, _user = community_admin
    person = create_user(home=COMMUNITY)
    answer = console.post(
        f"/console/admin/users/{person.id}", data={"roles": ["grid_staff"], "status": "active"}
    )
    assert answer.status_code == 400
    assert roles_of(session, person) == ["volunteer"]


def test_the_queue_lists_unverified_volunteers_and_verifies_one(
    community_admin, create_user, session
):
    console, user = community_admin
    waiting = create_user(home=COMMUNITY)
    beside = create_user(home=NEIGHBOUR_COMMUNITY)
    html = console.get("/console/admin/verification").get_data(as_text=True)
    assert f'data-verify="{waiting.id}"' in html and str(beside.id) not in html
    answer = console.post(
        f"/console/admin/users/{waiting.id}/verify",
        data={"back": "queue", "csrf_token": token(console)},
    )
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/console/admin/verification")
    session.expire_all()
    assert session.get(User, waiting.id).verified_by == user.id
    assert str(waiting.id) not in console.get("/console/admin/verification").get_data(as_text=True)


def test_verifying_without_the_csrf_token_changes_nothing(community_admin, create_user, session):
    console, _user = community_admin
    waiting = create_user(home=COMMUNITY)
    answer = console.post(f"/console/admin/users/{waiting.id}/verify", data={"back": "queue"})
    assert answer.status_code == 400
    session.expire_all()
    assert session.get(User, waiting.id).verified_at is None


def test_the_audit_log_is_for_admins_and_filters_like_the_api(console, create_user):
    community = create_user(roles=["community_admin"], jurisdiction=[SUBDISTRICT])
    sign_in(console, community)
    assert console.get("/console/admin/audit").status_code == 403
    admin = create_user(roles=["admin"])
    sign_in(console, admin)
    page = console.get("/console/admin/audit?action=auth.login")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-action="auth.login"' in html
    assert 'data-action="user.verified"' not in html
    assert console.get("/console/admin/audit?outcome=nonsense").status_code == 422
