"""Privacy rules, called on the service: the access log lists others' reads of the person's data
by role (never by name) and nothing else, and a deletion request is for volunteers only, keeps
its first date, signs out at once, is cancelled by a sign-in and falls due after its grace."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select

from app.auth.models import AuthSession
from app.core import audit
from app.core.errors import Conflict
from app.duty.models import DutyStatus
from app.privacy import deletion
from app.privacy import service as privacy
from app.privacy.models import AccountDeletion

NANLANG = "110105001024"
GRACE_DAYS = 30


@pytest.fixture
def person(create_user):
    return create_user(home=NANLANG)


@pytest.fixture
def staff(create_user):
    return create_user(roles=["grid_staff"], jurisdiction=[NANLANG])


def access_log(session, person) -> list:
    return session.execute(privacy.access_log_query(person.id)).all()


def test_staff_reading_the_persons_track_is_listed_by_role_and_purpose(session, person, staff):
    audit.record(
        session,
        "patrol.read",
        actor=staff,
        object_type="patrol",
        object_ids=[uuid.uuid4()],
        purpose="核实巡逻",
        details={"volunteer_id": str(person.id)},
    )
    (row,) = access_log(session, person)
    assert (row.role, row.what, row.purpose) == ("grid_staff", privacy.TRACK, "核实巡逻")
    assert str(staff.id) not in {str(value) for value in row}


def test_the_persons_own_acts_are_not_access_by_others(session, person):
    audit.record(
        session,
        "patrol.read",
        actor=person,
        object_type="patrol",
        object_ids=[uuid.uuid4()],
        details={"volunteer_id": str(person.id)},
    )
    audit.record(session, "user.updated", actor=person, object_type="user", object_ids=[person.id])
    assert access_log(session, person) == []


def test_an_operators_command_without_an_actor_is_access(session, person):
    audit.record(session, "user.updated", object_type="user", object_ids=[person.id])
    (row,) = access_log(session, person)
    assert (row.role, row.what) == (None, privacy.PROFILE)


def test_reads_of_someone_elses_data_are_not_in_the_persons_log(
    session, person, staff, create_user
):
    other = create_user(home=NANLANG)
    audit.record(session, "user.verified", actor=staff, object_type="user", object_ids=[other.id])
    audit.record(
        session,
        "patrol.position_read",
        actor=staff,
        object_type="patrol",
        object_ids=[uuid.uuid4()],
        details={"volunteer_id": str(other.id)},
    )
    assert access_log(session, person) == []


def test_a_profile_access_needs_a_user_object(session, person, staff):
    audit.record(session, "user.updated", actor=staff, object_type="tip", object_ids=[person.id])
    assert access_log(session, person) == []


def test_the_latest_access_comes_first(session, person, staff):
    audit.record(session, "user.verified", actor=staff, object_type="user", object_ids=[person.id])
    audit.record(
        session,
        "patrol.read",
        actor=staff,
        object_type="patrol",
        object_ids=[uuid.uuid4()],
        details={"volunteer_id": str(person.id)},
    )
    # One transaction: both have the same time, and the later record still comes first.
    assert [row.what for row in access_log(session, person)] == [privacy.TRACK, privacy.PROFILE]


@pytest.mark.parametrize("role", ["grid_staff", "community_admin", "police_liaison", "admin"])
def test_only_volunteer_accounts_are_deleted_on_request(session, create_user, role):
    account = create_user(roles=["volunteer", role], jurisdiction=[NANLANG])
    with pytest.raises(Conflict):
        deletion.request(session, account, grace_days=GRACE_DAYS)
    assert deletion.pending(session, account.id) is None


def test_asking_again_keeps_the_first_date(session, person):
    first = deletion.request(session, person, grace_days=GRACE_DAYS).erase_after
    again = deletion.request(session, person, grace_days=GRACE_DAYS + 10).erase_after
    assert again == first


def test_a_request_signs_out_everywhere_and_goes_off_duty_at_once(session, person):
    session.add_all([AuthSession(id=uuid.uuid4(), user_id=person.id) for _ in range(2)])
    session.add(DutyStatus(user_id=person.id))
    session.flush()
    deletion.request(session, person, grace_days=GRACE_DAYS)
    live = session.scalar(
        select(func.count()).where(
            AuthSession.user_id == person.id, AuthSession.revoked_at.is_(None)
        )
    )
    assert live == 0
    assert session.get(DutyStatus, person.id) is None


def test_a_request_by_staff_says_so(session, person, create_user):
    admin = create_user(roles=["community_admin"], jurisdiction=[NANLANG])
    asked = deletion.request(session, person, grace_days=GRACE_DAYS, actor=admin, reason="本人来电")
    assert asked.requested_by_staff is True


def test_a_sign_in_cancels_a_pending_deletion_only(session, person):
    assert deletion.cancel_on_sign_in(session, person) is False
    deletion.request(session, person, grace_days=GRACE_DAYS)
    assert deletion.cancel_on_sign_in(session, person) is True
    assert deletion.pending(session, person.id) is None


def test_deletions_fall_due_after_their_grace_oldest_first(session, create_user):
    now = dt.datetime.now(dt.UTC)
    waiting, later, earlier = (create_user() for _ in range(3))
    for user, erase_after in (
        (waiting, now + dt.timedelta(seconds=1)),
        (later, now - dt.timedelta(days=1)),
        (earlier, now - dt.timedelta(days=2)),
    ):
        session.add(AccountDeletion(user_id=user.id, requested_at=now, erase_after=erase_after))
    session.flush()
    due = deletion.due(session, now)
    assert due.index(earlier.id) < due.index(later.id)
    assert waiting.id not in due
