"""Deleting an account (DELETE /api/v1/me, DELETE /api/v1/users/{id}): the request, its grace
period, its cancellation by signing in, and what the erasure leaves."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select

from app.auth.models import AuthSession, ConsentEvent, User
from app.core.audit import AuditEvent
from app.exports.models import ClueBatch
from app.privacy import deletion
from app.privacy.models import AccountDeletion
from app.tips.models import Tip
from tests.conftest import PASSWORD
from tests.tips.conftest import tip_body

ME = "/api/v1/me"
LOGIN = "/api/v1/auth/login"
JIANWAI = "110105001024"
WRONG = "Wrong-Password-123"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def volunteer(create_user):
    return create_user(home=JIANWAI, phone=f"134{uuid.uuid4().int % 10**8:08d}")


def _delete_me(client, headers, password=PASSWORD):
    return client.delete(ME, json={"password": password}, headers=headers)


def test_deleting_my_account_schedules_erasure_and_signs_me_out(
    client, session, volunteer, token_for
):
    headers = token_for(volunteer)
    answer = _delete_me(client, headers)
    assert answer.status_code == 202, answer.json
    erase_after = dt.datetime.fromisoformat(answer.json["erase_after"])
    assert dt.timedelta(days=6, hours=23) < erase_after - _now() <= dt.timedelta(days=7)
    assert {kept["what"] for kept in answer.json["kept_by_law"]} == {
        "audit_trail",
        "clue_batches",
        "tips",
        "service_totals",
    }
    assert "Sign in" in answer.json["cancel"]
    # Signed out everywhere at once; the data waits for the grace period.
    assert client.get(ME, headers=headers).status_code == 401
    assert session.get(User, volunteer.id) is not None
    [event] = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "account.deletion_requested")
        .where(AuditEvent.object_ids.contains([str(volunteer.id)]))
    ).all()
    assert event.actor_id == volunteer.id


def test_a_wrong_password_is_a_422_problem_and_changes_nothing(
    client, volunteer, token_for, ledger
):
    headers = token_for(volunteer)
    ledger.mark()
    answer = _delete_me(client, headers, WRONG)
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
    assert answer.json["errors"][0]["pointer"] == "/password"
    assert ledger.changes() == []
    assert client.get(ME, headers=headers).status_code == 200


@pytest.mark.parametrize("body", [{}, {"password": ""}, {"password": PASSWORD, "extra": 1}])
def test_a_malformed_body_is_a_422_problem_and_changes_nothing(
    client, volunteer, token_for, ledger, body
):
    headers = token_for(volunteer)
    ledger.mark()
    answer = client.delete(ME, json=body, headers=headers)
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
    assert ledger.changes() == []


def test_wrong_passwords_count_against_the_sign_in_limit(client, volunteer, token_for):
    headers = token_for(volunteer)
    statuses = [_delete_me(client, headers, WRONG).status_code for _ in range(6)]
    # LOGIN_RATE_LIMIT: 5 a minute for the account, whichever way the password is guessed.
    assert statuses == [422] * 5 + [429]
    signing_in = client.post(LOGIN, json={"phone": volunteer.phone, "password": PASSWORD})
    assert signing_in.status_code == 429 and int(signing_in.headers["Retry-After"]) > 0
    refused = _delete_me(client, headers)
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"


def test_signing_in_during_the_grace_period_cancels_the_deletion(
    client, session, volunteer, token_for
):
    assert _delete_me(client, token_for(volunteer)).status_code == 202
    signed_in = client.post(LOGIN, json={"phone": volunteer.phone, "password": PASSWORD})
    assert signed_in.status_code == 200 and signed_in.json["deletion_cancelled"] is True
    assert session.get(AccountDeletion, volunteer.id) is None
    assert deletion.erase_due(session, _now() + dt.timedelta(days=30)) == 0
    assert session.get(User, volunteer.id) is not None
    again = client.post(LOGIN, json={"phone": volunteer.phone, "password": PASSWORD})
    assert again.json["deletion_cancelled"] is False


def test_erasure_waits_for_the_grace_period_then_removes_the_account(
    client, session, volunteer, token_for
):
    headers = token_for(volunteer)
    tip = client.post(
        "/api/v1/tips",
        json=tip_body(police_contact_consent=True),
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
    ).json["id"]
    assert _delete_me(client, headers).status_code == 202
    assert deletion.erase_due(session, _now() + dt.timedelta(days=6)) == 0
    assert deletion.erase_due(session, _now() + dt.timedelta(days=7, minutes=1)) == 1
    session.expire_all()
    assert session.get(User, volunteer.id) is None
    kept = session.get(Tip, uuid.UUID(tip))
    assert kept.reporter_id is None and kept.anonymous and not kept.police_contact_consent
    gone = select(func.count()).where(ConsentEvent.user_id == volunteer.id)
    assert session.scalar(gone) == 0
    [erased] = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "account.erased")
        .where(AuditEvent.object_ids.contains([str(volunteer.id)]))
    ).all()
    assert erased.actor_id is None and erased.details == {"account": "deleted"}


def test_an_account_a_clue_batch_names_stays_as_a_tombstone_with_nothing_personal(
    session, volunteer, create_user
):
    session.add(ConsentEvent(user_id=volunteer.id, kind="terms", value="2026-11"))
    session.add(
        ClueBatch(
            created_by=volunteer.id,
            creator_role="grid_staff",
            purpose="派出所核查线索",
            case_reference="JX-1",
        )
    )
    session.add(AuthSession(id=uuid.uuid4(), user_id=volunteer.id))
    session.add(
        AccountDeletion(
            user_id=volunteer.id,
            requested_at=_now() - dt.timedelta(days=8),
            erase_after=_now() - dt.timedelta(days=1),
        )
    )
    session.flush()
    assert deletion.erase(session, volunteer.id) == "tombstone"
    session.expire_all()
    tombstone = session.get(User, volunteer.id)
    assert tombstone.real_name == "" and not tombstone.phone.isdigit()
    assert tombstone.id_number_digest is None and tombstone.id_number_masked is None
    assert tombstone.roles == [] and tombstone.status == "disabled"
    assert tombstone.home_community_id is None and tombstone.jurisdiction == []
    for table in (ConsentEvent, AuthSession, AccountDeletion):
        assert (
            session.scalar(
                select(func.count()).select_from(table).where(table.user_id == volunteer.id)
            )
            == 0
        )


def test_staff_accounts_are_not_deleted_this_way(client, create_user, token_for, ledger):
    staff = create_user(roles=["volunteer", "grid_staff"], jurisdiction=[JIANWAI])
    headers = token_for(staff)
    ledger.mark()
    answer = _delete_me(client, headers)
    assert answer.status_code == 409 and answer.mimetype == "application/problem+json"
    assert ledger.changes() == []


def test_an_administrator_deletes_a_volunteer_of_their_jurisdiction_with_a_reason(
    client, session, volunteer, token_for
):
    answer = client.delete(
        f"/api/v1/users/{volunteer.id}",
        json={"reason": "本人到社区书面申请注销"},
        headers=token_for("community_admin"),
    )
    assert answer.status_code == 202, answer.json
    assert session.get(AccountDeletion, volunteer.id).requested_by_staff
    [event] = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "account.deletion_requested")
        .where(AuditEvent.object_ids.contains([str(volunteer.id)]))
    ).all()
    assert event.purpose == "本人到社区书面申请注销" and event.actor_role == "community_admin"


@pytest.mark.parametrize(
    "who, body, status",
    [
        ("grid_staff", {"reason": "本人申请注销"}, 403),
        ("volunteer", {"reason": "本人申请注销"}, 403),
        ("community_admin", {}, 422),
        ("community_admin", {"reason": "x"}, 422),
    ],
)
def test_staff_deletion_refusals_change_nothing(
    client, volunteer, token_for, ledger, who, body, status
):
    headers = token_for(who)
    ledger.mark()
    answer = client.delete(f"/api/v1/users/{volunteer.id}", json=body, headers=headers)
    assert answer.status_code == status and answer.mimetype == "application/problem+json"
    assert ledger.changes() == []


def test_an_administrator_elsewhere_does_not_see_the_volunteer(
    client, create_user, token_for, ledger
):
    elsewhere = create_user(home="110105001025")
    headers = token_for(create_user(roles=["community_admin"], jurisdiction=[JIANWAI]))
    ledger.mark()
    answer = client.delete(
        f"/api/v1/users/{elsewhere.id}", json={"reason": "本人申请注销"}, headers=headers
    )
    assert answer.status_code == 404
    assert ledger.changes() == []


def test_the_erasure_job_is_periodic(app):
    from app.core import jobs as jobs_module
    from app.privacy.jobs import erase_deleted_accounts

    periodic = {
        p.periodic_id: p for p in jobs_module.jobs.periodic_registry.periodic_tasks.values()
    }
    assert periodic["erase_deleted_accounts"].task is erase_deleted_accounts
