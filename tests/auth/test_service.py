"""Account rules, called on the service: who may grant which roles and administer whom, which
role sets hold together, what a disabled account and a new password end, what a move of home
community and a withdrawn consent take away, and who verifies a volunteer."""

from __future__ import annotations

import uuid

import pytest
from flask import current_app
from sqlalchemy import func, select

from app.auth import service
from app.auth.models import AuthSession, ConsentEvent
from app.core.audit import AuditEvent
from app.core.auth import ADMIN, COMMUNITY_ADMIN, GRID_STAFF, POLICE_LIAISON, ROLES, VOLUNTEER
from app.core.errors import Conflict, Forbidden, Unprocessable
from app.duty.models import DutyStatus
from tests.conftest import PASSWORD

NANLANG, BEILANG, JIANWAI = "110105001024", "110105001025", "110105001000"
CHAOWAI_COMMUNITY = "110105002024"


@pytest.fixture
def admin_of_jianwai(create_user):
    return create_user(roles=[COMMUNITY_ADMIN], jurisdiction=[JIANWAI])


@pytest.mark.parametrize(
    ("roles", "grantable"),
    [
        ([ADMIN], set(ROLES)),
        ([COMMUNITY_ADMIN], {VOLUNTEER, GRID_STAFF, COMMUNITY_ADMIN}),
        ([GRID_STAFF], set()),
        ([POLICE_LIAISON], set()),
        ([VOLUNTEER], set()),
    ],
)
def test_the_roles_an_actor_may_grant(create_user, roles, grantable):
    assert service.grantable_roles(create_user(roles=roles)) == grantable


def test_nobody_administers_their_own_account(session, admin_of_jianwai):
    with pytest.raises(Forbidden):
        service.check_manages(session, admin_of_jianwai, admin_of_jianwai)


@pytest.mark.parametrize(
    ("roles", "jurisdiction", "home"),
    [
        ([ADMIN], (), None),  # a role the actor may not grant
        ([POLICE_LIAISON], (JIANWAI,), None),  # appointed by admins only
        ([GRID_STAFF], (NANLANG, CHAOWAI_COMMUNITY), None),  # an area outside
        ([VOLUNTEER], (), CHAOWAI_COMMUNITY),  # a home outside
    ],
)
def test_a_community_admin_cannot_administer_what_reaches_beyond_them(
    session, admin_of_jianwai, create_user, roles, jurisdiction, home
):
    account = create_user(roles=roles, jurisdiction=jurisdiction, home=home)
    with pytest.raises(Forbidden):
        service.check_manages(session, admin_of_jianwai, account)


def test_a_community_admin_administers_staff_and_volunteers_of_their_areas(
    session, admin_of_jianwai, create_user
):
    for account in (
        create_user(roles=[GRID_STAFF], jurisdiction=[NANLANG]),
        create_user(roles=[VOLUNTEER], home=BEILANG),
    ):
        service.check_manages(session, admin_of_jianwai, account)


@pytest.mark.parametrize(
    ("roles", "jurisdiction"),
    [
        ([GRID_STAFF], []),
        ([POLICE_LIAISON], []),
        ([POLICE_LIAISON, GRID_STAFF], [JIANWAI]),
        ([POLICE_LIAISON, COMMUNITY_ADMIN], [JIANWAI]),
    ],
)
def test_staff_and_liaisons_need_areas_and_a_liaison_is_not_staff(
    session, create_user, area, roles, jurisdiction
):
    admin, account = create_user(roles=[ADMIN]), create_user()
    values = {"roles": roles, "jurisdiction": [area(code).id for code in jurisdiction]}
    with pytest.raises(Unprocessable):
        service.update_account(session, admin, account, values)


def test_a_community_admin_cannot_take_away_a_role_they_may_not_grant(
    session, admin_of_jianwai, create_user, area
):
    liaison_and_volunteer = create_user(roles=[VOLUNTEER], home=NANLANG)
    liaison_and_volunteer.roles = [VOLUNTEER, POLICE_LIAISON]
    liaison_and_volunteer.jurisdiction = [area(JIANWAI)]
    with pytest.raises(Forbidden):
        service.update_account(session, admin_of_jianwai, liaison_and_volunteer, {"roles": []})


def live_sessions(session, user) -> int:
    return session.scalar(
        select(func.count()).where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
    )


def signed_in_twice(session, user) -> list[uuid.UUID]:
    ids = [uuid.uuid4(), uuid.uuid4()]
    session.add_all(AuthSession(id=i, user_id=user.id) for i in ids)
    session.flush()
    return ids


def test_disabling_an_account_ends_all_its_sessions(session, admin_of_jianwai, create_user):
    volunteer = create_user(home=NANLANG)
    signed_in_twice(session, volunteer)
    service.update_account(session, admin_of_jianwai, volunteer, {"status": "disabled"})
    assert live_sessions(session, volunteer) == 0


def test_a_change_of_roles_is_audited_from_and_to(session, admin_of_jianwai, create_user, area):
    volunteer = create_user(home=NANLANG)
    values = {"roles": [VOLUNTEER, GRID_STAFF], "jurisdiction": [area(NANLANG).id]}
    service.update_account(session, admin_of_jianwai, volunteer, values)
    event = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "user.updated", AuditEvent.object_ids.contains([str(volunteer.id)])
        )
    ).one()
    assert event.details["roles"] == {"from": [VOLUNTEER], "to": [GRID_STAFF, VOLUNTEER]}


def test_an_update_that_changes_nothing_is_not_audited(session, admin_of_jianwai, create_user):
    volunteer = create_user(home=NANLANG)
    service.update_account(session, admin_of_jianwai, volunteer, {"status": "active"})
    audited = session.scalar(
        select(func.count()).where(AuditEvent.object_ids.contains([str(volunteer.id)]))
    )
    assert audited == 0


def test_a_new_password_ends_every_other_session(session, create_user):
    volunteer = create_user(home=NANLANG)
    kept, other = signed_in_twice(session, volunteer)
    service.change_password(
        session,
        volunteer,
        PASSWORD,
        "Another-Horse-Battery-7",
        kept,
        service.AuthSettings.from_config(current_app.config),
    )
    assert session.get(AuthSession, other).revoked_at is not None
    assert session.get(AuthSession, kept).revoked_at is None


def test_moving_to_another_community_withdraws_the_verification(session, create_user, area):
    volunteer = create_user(home=NANLANG)
    staff = create_user(roles=[GRID_STAFF], jurisdiction=[NANLANG])
    service.verify_volunteer(session, staff, volunteer)
    service.update_me(session, volunteer, {"home_community_id": area(NANLANG).id})
    assert volunteer.verified_at is not None  # the same community: nothing moves
    service.update_me(session, volunteer, {"home_community_id": area(BEILANG).id})
    assert (volunteer.verified_at, volunteer.verified_by) == (None, None)


def test_skills_are_kept_once_each_in_order(session, create_user):
    volunteer = create_user()
    service.update_me(session, volunteer, {"skills": ["first_aid", "driving", "first_aid"]})
    assert volunteer.skills == ["driving", "first_aid"]


def test_withdrawing_location_sharing_forgets_the_position_at_once(session, create_user):
    volunteer = create_user()
    service.set_location_sharing(session, volunteer, True)
    session.add(
        DutyStatus(
            user_id=volunteer.id, geom="SRID=4326;POINT(116.46 39.91)", position_at=func.now()
        )
    )
    session.flush()
    service.set_location_sharing(session, volunteer, False)
    session.expire_all()
    duty = session.get(DutyStatus, volunteer.id)
    assert (duty.geom, duty.position_at) == (None, None)


def test_a_consent_is_recorded_once_per_change(session, create_user):
    volunteer = create_user()
    for granted in (True, True, False, False):
        service.set_sms_consent(session, volunteer, granted)
    session.flush()
    values = session.scalars(
        select(ConsentEvent.value)
        .where(ConsentEvent.user_id == volunteer.id, ConsentEvent.kind == "sms")
        .order_by(ConsentEvent.recorded_at, ConsentEvent.id)
    ).all()
    assert values == ["granted", "withdrawn"]


def test_only_volunteers_are_verified(session, create_user):
    staff = create_user(roles=[GRID_STAFF], jurisdiction=[NANLANG])
    other_staff = create_user(roles=[GRID_STAFF], jurisdiction=[NANLANG], home=NANLANG)
    with pytest.raises(Conflict):
        service.verify_volunteer(session, staff, other_staff)


def test_a_second_verification_keeps_the_first_verifier(session, create_user):
    volunteer = create_user(home=NANLANG)
    first, second = (create_user(roles=[GRID_STAFF], jurisdiction=[NANLANG]) for _ in range(2))
    service.verify_volunteer(session, first, volunteer)
    service.verify_volunteer(session, second, volunteer)
    assert volunteer.verified_by == first.id
