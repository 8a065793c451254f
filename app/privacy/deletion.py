"""Deleting an account (PIPL Art. 47): a request, a grace period, then erasure.

A request (the person, password re-entered; or an administrator on their behalf, with a reason)
signs the account out everywhere and takes it off duty, and erasure waits
ACCOUNT_DELETION_GRACE_DAYS: signing in meanwhile cancels it. When it is due, `erase` removes or
de-identifies everything that identifies the person, and what the law requires to keep
(KEPT_BY_LAW) stays, tied to nobody who can be named.

The account row itself is deleted, so that every foreign key to it (ON DELETE CASCADE or SET
NULL, migration 0013 for `users.verified_by`) takes the person's rows with it. Only a clue batch
already handed to the police (`clue_batches.created_by`, `acknowledged_by`,
`clue_batch_items.outcome_by`: kept by law, and no ON DELETE rule may take them) keeps the row
alive, as a tombstone: the bare id, no phone, name, identity, password, roles or areas.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import delete, exists, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.auth import signals as account_signals
from app.auth.models import User
from app.core import audit
from app.core.auth import VOLUNTEER
from app.core.errors import Conflict
from app.core.i18n import N_, _, translated
from app.duty.models import DutyStatus
from app.exports.models import ClueBatch, ClueBatchItem
from app.media.models import Media
from app.patrols.models import CheckIn, Checkpoint, Patrol
from app.privacy.models import AccountDeletion, AnonymousServiceTotal
from app.service_record.models import ServiceEntry
from app.storage import ObjectStore
from app.tasks.models import Task
from app.tips.models import Tip, TipEvent

# What stays after erasure because the law requires it, as the answer and docs/privacy.md list it.
KEPT_BY_LAW = (
    {
        "what": "audit_trail",
        "why": N_(
            "The audit trail of acts on the platform (who, in which role, did what, when, and "
            "why) is append-only and kept by law (Cybersecurity Law Art. 21: logs at least six "
            "months); it holds your account's random id, never your phone, name or ID number."
        ),
    },
    {
        "what": "clue_batches",
        "why": N_(
            "Clue batches already handed to the police stay as they were frozen (evidence in "
            "police cases); your named tips in them become anonymous in the platform."
        ),
    },
    {
        "what": "tips",
        "why": N_(
            "Your tips, their photos and their follow-up stay as anonymous tips (public-safety "
            "records); nothing links them to you any more."
        ),
    },
    {
        "what": "service_totals",
        "why": N_(
            "Your service time is added to anonymous totals per community and month "
            "(the organisation's statistics); no row is yours."
        ),
    },
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def pending(session: Session, user_id: uuid.UUID) -> AccountDeletion | None:
    return session.get(AccountDeletion, user_id)


def request(
    session: Session,
    user: User,
    *,
    grace_days: int,
    actor: User | None = None,
    reason: str | None = None,
) -> AccountDeletion:
    """Schedule the erasure of `user` (asked by themselves, or by `actor` with a `reason`).

    Only volunteer accounts: staff, liaison and admin accounts hold others' data and acts; an
    administrator takes their roles away first. Asking again keeps the first date."""
    if set(user.roles) - {VOLUNTEER}:
        raise Conflict(
            _(
                "Staff, police liaison and admin accounts are not deleted this way: an "
                "administrator first takes their roles away."
            )
        )
    deletion = session.get(AccountDeletion, user.id)
    if deletion is None:
        now = _now()
        deletion = AccountDeletion(
            user_id=user.id,
            requested_at=now,
            erase_after=now + dt.timedelta(days=grace_days),
            requested_by_staff=actor is not None,
        )
        session.add(deletion)
    # Signed out everywhere and off duty at once; a sign-in is the way back.
    from app.auth.service import revoke_all_sessions

    revoke_all_sessions(session, user.id, "deletion_requested")
    session.execute(delete(DutyStatus).where(DutyStatus.user_id == user.id))
    audit.record(
        session,
        "account.deletion_requested",
        actor=actor or user,
        object_type="user",
        object_ids=[user.id],
        purpose=reason,
        details={"erase_after": deletion.erase_after.isoformat()},
    )
    session.flush()
    return deletion


def cancel_on_sign_in(session: Session, user: User) -> bool:
    """A sign-in during the grace period cancels the deletion; True when one was pending."""
    cancelled = session.execute(
        delete(AccountDeletion).where(AccountDeletion.user_id == user.id)
    ).rowcount
    if cancelled:
        audit.record(
            session,
            "account.deletion_cancelled",
            actor=user,
            object_type="user",
            object_ids=[user.id],
        )
    return bool(cancelled)


def due(session: Session, now: dt.datetime, limit: int = 100) -> list[uuid.UUID]:
    """Accounts whose grace period is over, oldest first; locked, skipping those another
    worker is erasing."""
    return list(
        session.scalars(
            select(AccountDeletion.user_id)
            .where(AccountDeletion.erase_after <= now)
            .order_by(AccountDeletion.erase_after)
            .with_for_update(skip_locked=True)
            .limit(limit)
        )
    )


def _keep_service_totals(session: Session, user: User) -> None:
    """Add the person's service time to the anonymous totals (home community, month, kind)."""
    month = func.date_trunc("month", ServiceEntry.day).cast(AnonymousServiceTotal.month.type)
    rows = session.execute(
        select(month.label("month"), ServiceEntry.kind, func.sum(ServiceEntry.seconds))
        .where(ServiceEntry.volunteer_id == user.id)
        .group_by(month, ServiceEntry.kind)
    ).all()
    for row_month, kind, seconds in rows:
        statement = insert(AnonymousServiceTotal).values(
            id=uuid.uuid4(),
            community_id=user.home_community_id,
            month=row_month,
            kind=kind,
            seconds=seconds,
        )
        session.execute(
            statement.on_conflict_do_update(
                constraint="uq_anonymous_service_totals_place_month_kind",
                set_={"seconds": AnonymousServiceTotal.seconds + statement.excluded.seconds},
            )
        )


def _anonymise_tips(session: Session, user_id: uuid.UUID) -> None:
    """Named tips become anonymous: the reporter link and the consent to be contacted go, the
    tip, its photos and its history stay. Staff links (assignee, author of a summary or of a
    history line) are cleared too."""
    session.execute(
        update(Tip)
        .where(Tip.reporter_id == user_id)
        .values(
            reporter_id=None,
            anonymous=True,
            police_contact_consent=False,
            version=Tip.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Tip)
        .where(Tip.assignee_id == user_id)
        .values(assignee_id=None, version=Tip.version + 1)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Tip)
        .where(Tip.public_summary_by == user_id)
        .values(public_summary_by=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(update(TipEvent).where(TipEvent.actor_id == user_id).values(actor_id=None))
    # Photos stay with their tips, as an anonymous tip's do, and with the tasks they complete
    # (the task's evidence); uploads attached to neither expire now (the media job deletes
    # them with their files, when the erasure has not already).
    session.execute(
        update(Media)
        .where(Media.owner_id == user_id, Media.tip_id.is_(None), Media.task_id.is_(None))
        .values(expires_at=func.least(Media.expires_at, _now()))
    )
    session.execute(update(Media).where(Media.owner_id == user_id).values(owner_id=None))


def _forget_elsewhere(session: Session, user_id: uuid.UUID) -> None:
    """Rows that carry the id without a foreign key to take them: raw fixes (no foreign keys on
    that hot table), tasks' named targeting, idempotency records scoped by the account."""
    session.execute(delete(CheckIn).where(CheckIn.volunteer_id == user_id))
    session.execute(delete(Patrol).where(Patrol.volunteer_id == user_id))
    session.execute(
        text(
            "UPDATE tasks SET targeting = jsonb_set(targeting, '{volunteer_ids}', "
            "COALESCE((SELECT jsonb_agg(v) FROM jsonb_array_elements(targeting->'volunteer_ids')"
            " AS v WHERE v <> to_jsonb(CAST(:id AS text))), '[]'::jsonb)) "
            "WHERE targeting->'volunteer_ids' ? CAST(:id AS text)"
        ),
        {"id": str(user_id)},
    )
    session.execute(
        text("DELETE FROM idempotency_records WHERE scope = :scope"),
        {"scope": f"user:{user_id}"},
    )
    session.execute(
        update(Checkpoint)
        .where(or_(Checkpoint.responsible_id == user_id, Checkpoint.created_by == user_id))
        .values(
            responsible_id=func.nullif(Checkpoint.responsible_id, user_id),
            created_by=func.nullif(Checkpoint.created_by, user_id),
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(update(Task).where(Task.created_by == user_id).values(created_by=None))


def _held_by_police_records(session: Session, user_id: uuid.UUID) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    or_(ClueBatch.created_by == user_id, ClueBatch.acknowledged_by == user_id)
                )
                | exists().where(ClueBatchItem.outcome_by == user_id)
            )
        )
    )


def _tombstone(session: Session, user: User) -> None:
    """The row a clue batch still names: nothing personal left, and no way to sign in."""
    session.execute(text("SELECT consent_events_erase(:id)"), {"id": user.id})
    from app.auth.models import AuthSession, GuardianConsent, user_areas

    session.execute(delete(AuthSession).where(AuthSession.user_id == user.id))
    session.execute(delete(GuardianConsent).where(GuardianConsent.user_id == user.id))
    session.execute(delete(user_areas).where(user_areas.c.user_id == user.id))
    user.phone = f"x{user.id.hex[:10]}"  # unique, and no phone number
    user.password_hash = "!"  # noqa: S105 - no argon2 hash: no password verifies, no sign-in
    user.real_name = ""
    user.id_number_digest = user.id_number_masked = None
    user.id_number_consent, user.id_number_consent_changed_at = False, None
    user.roles, user.volunteer_types, user.skills = [], [], []
    user.home_community_id = None
    user.status = "disabled"
    user.verified_at = user.verified_by = None
    user.terms_version = user.terms_accepted_at = None
    user.location_sharing, user.location_sharing_changed_at = False, None
    session.execute(delete(AccountDeletion).where(AccountDeletion.user_id == user.id))


def erase(
    session: Session,
    user_id: uuid.UUID,
    archives: ObjectStore | None = None,
    media: ObjectStore | None = None,
) -> str:
    """Erase the person: 'deleted' (the account row and everything hanging on it), or
    'tombstone' (a clue batch handed to the police names the account). The audit record of
    the erasure names the account's id only. With the stores, the person's data archives and
    unattached uploads go with their objects at once (rows would cascade, objects not)."""
    user = session.get(User, user_id)
    if archives is not None:
        from app.privacy import archive

        archive.remove(session, archives, archive.DataArchive.user_id == user_id)
    if media is not None:
        _delete_unattached_uploads(session, user_id, media)
    _keep_service_totals(session, user)
    _anonymise_tips(session, user_id)
    _forget_elsewhere(session, user_id)
    session.flush()
    if _held_by_police_records(session, user_id):
        _tombstone(session, user)
        outcome = "tombstone"
    else:
        # ON DELETE CASCADE: consents, sessions and refresh tokens, devices, duty, notifications
        # and their deliveries, task responses, service entries, team memberships, checkpoint
        # visits, areas granted, the pending deletion; SET NULL: teams led, station visits,
        # accounts verified.
        session.execute(delete(User).where(User.id == user_id))
        session.expunge(user)
        outcome = "deleted"
    audit.record(
        session,
        "account.erased",
        object_type="user",
        object_ids=[user_id],
        details={"account": outcome},
    )
    session.flush()
    return outcome


def _delete_unattached_uploads(session: Session, user_id: uuid.UUID, media: ObjectStore) -> None:
    """Uploads attached to nothing: objects first, then rows (as the expiry job does)."""
    uploads = session.scalars(
        select(Media).where(
            Media.owner_id == user_id, Media.tip_id.is_(None), Media.task_id.is_(None)
        )
    ).all()
    for upload in uploads:
        media.delete(upload.storage_key)
        media.delete(upload.thumbnail_key)
        session.delete(upload)
    session.flush()


def erase_due(
    session: Session,
    now: dt.datetime,
    archives: ObjectStore | None = None,
    media: ObjectStore | None = None,
) -> int:
    """Erase every account whose grace period is over; how many were."""
    ids = due(session, now)
    for user_id in ids:
        erase(session, user_id, archives, media)
    return len(ids)


def answer(deletion: AccountDeletion) -> dict:
    """What a deletion request answers: when, how to cancel, and what the law keeps."""
    return {
        "erase_after": deletion.erase_after,
        "cancel": translated(
            N_("Sign in before this time to cancel the deletion; your account then stays.")
        ),
        "kept_by_law": [
            {"what": kept["what"], "why": translated(kept["why"])} for kept in KEPT_BY_LAW
        ],
    }


def _cancel_on_sign_in(_sender: object = None, *, session: Session, user: User) -> bool:
    return cancel_on_sign_in(session, user)


def connect_to_accounts() -> None:
    """A sign-in cancels a pending deletion (accounts announce it, app/auth/signals.py);
    create_app calls this."""
    account_signals.signed_in.connect(_cancel_on_sign_in)
