"""Accounts and sessions: registration, login, token rotation, profiles, staff administration."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from sqlalchemy import Select, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, joinedload

from app.areas.models import Area, AreaLevel
from app.auth import signals, validators
from app.auth.jurisdiction import area_path_columns, jurisdiction_of
from app.auth.models import (
    AuthSession,
    ConsentEvent,
    GuardianConsent,
    RefreshToken,
    User,
    phone_lookup,
    user_areas,
)
from app.core import audit
from app.core.auth import ADMIN, COMMUNITY_ADMIN, GRID_STAFF, POLICE_LIAISON, ROLES, VOLUNTEER
from app.core.errors import Conflict, DomainError, Forbidden, NotFound, Unprocessable
from app.core.i18n import _, _l

# One answer whether the phone or the ID number is taken: no telling which.
_EXISTS = _l("An account with this phone number or resident ID number exists already.")


class AuthenticationFailed(DomainError):
    status = 401
    slug = "authentication-failed"


class RefreshTokenReused(AuthenticationFailed):
    """A refresh token came back after it was used: its whole session is revoked."""


class UnderAge(Unprocessable):
    """The ID number's birth date says the registrant is under MINIMUM_AGE, and no guardian's
    consent may stand in (or none was given)."""

    slug = "under-age"


# Volunteers register from this age on their own; below it only with a guardian's consent, and
# only where MINORS_ALLOWED_WITH_GUARDIAN is on (PIPL art. 31: a guardian consents for minors).
MINIMUM_AGE = 18
# Birthdays turn by the calendar of Beijing, not of the server.
_LOCAL = ZoneInfo("Asia/Shanghai")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class AuthSettings:
    """The settings the account rules apply; callers read them from the configuration."""

    argon2_time_cost: int
    argon2_memory_kib: int
    id_number_hash_key: str
    terms_version: str
    access_token_minutes: int
    refresh_token_days: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AuthSettings:
        return cls(
            argon2_time_cost=config["ARGON2_TIME_COST"],
            argon2_memory_kib=config["ARGON2_MEMORY_KIB"],
            id_number_hash_key=config["ID_NUMBER_HASH_KEY"],
            terms_version=config["TERMS_VERSION"],
            access_token_minutes=config["ACCESS_TOKEN_MINUTES"],
            refresh_token_days=config["REFRESH_TOKEN_DAYS"],
        )


def _hasher(settings: AuthSettings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib
    )


def _field_error(field: str, message: str) -> Unprocessable:
    return Unprocessable(
        message, extra={"errors": [{"location": "json", "pointer": f"/{field}", "detail": message}]}
    )


def _validated(field: str, func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except validators.InvalidInput as exc:
        raise _field_error(field, str(exc)) from exc


def _community_id(session: Session, area_id: uuid.UUID | None) -> uuid.UUID | None:
    """The id of an existing community, or a 422 on home_community_id."""
    if area_id is None:
        return None
    area = session.get(Area, area_id)
    if area is None or area.level != AreaLevel.COMMUNITY:
        raise _field_error("home_community_id", _("Not a community."))
    return area.id


def _record_consent(session: Session, user: User, kind: str, value: str) -> None:
    session.add(ConsentEvent(user_id=user.id, kind=kind, value=value, recorded_at=_now()))


def set_location_sharing(session: Session, user: User, granted: bool) -> None:
    """Location sharing for dispatch: separate from the terms, revocable, recorded each time."""
    if user.location_sharing == granted and user.location_sharing_changed_at is not None:
        return
    user.location_sharing = granted
    user.location_sharing_changed_at = _now()
    if not granted:  # where they were is forgotten at once (ARCHITECTURE §6)
        signals.location_sharing_withdrawn.send(session=session, user=user)
    _record_consent(session, user, "location_sharing", "granted" if granted else "withdrawn")


def set_sms_consent(session: Session, user: User, granted: bool) -> None:
    """SMS for urgent tasks whose push went unanswered: separate, revocable, recorded each time.
    The fallback reads it when it sends, so a withdrawal stops SMS not yet sent."""
    if user.sms_consent == granted and user.sms_consent_changed_at is not None:
        return
    user.sms_consent = granted
    user.sms_consent_changed_at = _now()
    _record_consent(session, user, "sms", "granted" if granted else "withdrawn")


def withdraw_id_number_consent(session: Session, user: User) -> None:
    """Withdrawing the ID-number consent erases, at once, what was kept of the number (its keyed
    hash and masked form) and the real-name verification that rested on it: staff verified the
    person against that number. Giving it again means giving the number again."""
    if not user.id_number_consent and user.id_number_consent_changed_at is not None:
        return
    user.id_number_consent = False
    user.id_number_consent_changed_at = _now()
    user.id_number_digest = user.id_number_masked = None
    user.verified_at = user.verified_by = None
    _record_consent(session, user, "id_number", "withdrawn")


def _identity(
    session: Session, id_number: str | None, hash_key: str
) -> tuple[bytes | None, str | None]:
    if not id_number:
        return None, None
    number = _validated("id_number", validators.normalize_id_number, id_number)
    digest = validators.id_number_digest(number, hash_key.encode())
    if session.scalar(select(User.id).where(User.id_number_digest == digest)):
        raise Conflict(_EXISTS)
    return digest, validators.mask_id_number(number)


def _flush_unique(session: Session) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(_EXISTS) from exc


def _require_id_number_consent(values: dict[str, Any], consent: bool, pointer: str) -> None:
    """No use of an ID number (not even reading the age from it) without its own consent."""
    if values.get("id_number") and not consent:
        raise _field_error(
            pointer, _("Processing the resident ID number needs your separate consent.")
        )


def _new_user(
    session: Session,
    values: dict[str, Any],
    *,
    id_number_consent: bool,
    consent_pointer: str,
    settings: AuthSettings,
    **fields: Any,
) -> User:
    """A new account from validated identity values (phone, password, real name, optional ID
    number and home community) plus `fields`; added and flushed, duplicates a 409. An ID number
    comes with its own consent (422 on `consent_pointer` without it), recorded."""
    _require_id_number_consent(values, id_number_consent, consent_pointer)
    phone = _validated("phone", validators.normalize_phone, values["phone"])
    if session.scalar(select(User.id).where(User.phone_hmac == phone_lookup(phone))):
        raise Conflict(_EXISTS)
    _validated(
        "password",
        validators.check_password,
        values["password"],
        user_inputs=(phone, values["real_name"]),
    )
    digest, masked = _identity(session, values.get("id_number"), settings.id_number_hash_key)
    user = User(
        id=uuid.uuid4(),
        phone=phone,
        password_hash=_hasher(settings).hash(values["password"]),
        real_name=values["real_name"].strip(),
        id_number_digest=digest,
        id_number_masked=masked,
        home_community_id=_community_id(session, values.get("home_community_id")),
        status="active",
        id_number_consent=digest is not None,
        id_number_consent_changed_at=_now() if digest is not None else None,
        **{"volunteer_types": [], "skills": [], **fields},
    )
    session.add(user)
    _flush_unique(session)
    if digest is not None:
        _record_consent(session, user, "id_number", "granted")
    return user


def _local_today() -> dt.date:
    return dt.datetime.now(_LOCAL).date()


def _check_age(
    values: dict[str, Any], *, minors_allowed: bool, today: dt.date
) -> dict[str, str] | None:
    """The guardian (name, normalized phone) of a minor registering with their consent, or None
    for an adult; refuses one under MINIMUM_AGE otherwise. The birth date is read here and kept
    nowhere."""
    number = _validated("id_number", validators.normalize_id_number, values["id_number"])
    if validators.age_on(validators.birth_date(number), today) >= MINIMUM_AGE:
        return None
    if not minors_allowed:
        message = _(
            "Volunteers register from the age of %(count)s: the ID number says you are younger.",
            count=MINIMUM_AGE,
        )
        raise UnderAge(
            message,
            extra={
                "minimum_age": MINIMUM_AGE,
                "errors": [{"location": "json", "pointer": "/id_number", "detail": message}],
            },
        )
    guardian = values.get("guardian")
    if not guardian or guardian.get("consent") is not True:
        message = _(
            "Under %(count)s, a guardian's consent is needed: their name, phone and consent.",
            count=MINIMUM_AGE,
        )
        raise UnderAge(
            message,
            extra={
                "minimum_age": MINIMUM_AGE,
                "errors": [{"location": "json", "pointer": "/guardian", "detail": message}],
            },
        )
    phone = _validated("guardian/phone", validators.normalize_phone, guardian["phone"])
    return {"name": guardian["name"].strip(), "phone": phone}


def register_volunteer(
    session: Session,
    values: dict[str, Any],
    *,
    settings: AuthSettings,
    minors_allowed: bool = False,
    today: dt.date | None = None,
) -> User:
    """A resident registers under their real name; staff verify them later. Under MINIMUM_AGE
    (by the ID number's birth date, on Beijing's `today`) only with a guardian's consent, and
    only if `minors_allowed`."""
    consents = values["consents"]
    current = settings.terms_version
    if consents["terms_version"] != current:
        message = _("Accept the current terms (version %(value)s).", value=current)
        refused = _field_error("consents/terms_version", message)
        # The version it expects, for the app to fetch (GET /api/v1/terms) and show.
        refused.extra["current_terms_version"] = current
        raise refused
    _require_id_number_consent(values, bool(consents.get("id_number")), "consents/id_number")
    guardian = _check_age(values, minors_allowed=minors_allowed, today=today or _local_today())
    user = _new_user(
        session,
        values,
        id_number_consent=bool(consents.get("id_number")),
        consent_pointer="consents/id_number",
        settings=settings,
        roles=[VOLUNTEER],
        volunteer_types=sorted(set(values.get("volunteer_types", []))),
        skills=sorted(set(values.get("skills", []))),
        terms_version=consents["terms_version"],
        terms_accepted_at=_now(),
    )
    _record_consent(session, user, "terms", consents["terms_version"])
    set_location_sharing(session, user, bool(consents.get("location_sharing", False)))
    if guardian is not None:
        session.add(
            GuardianConsent(
                user_id=user.id,
                guardian_name=guardian["name"],
                guardian_phone=guardian["phone"],
                consented_at=_now(),
            )
        )
        _record_consent(session, user, "guardian", "granted")
    session.flush()
    return user


# --- sessions and tokens ------------------------------------------------------------------------

# Verified against when the phone is unknown, so that a failed login takes as long either way.
_DUMMY_HASH: dict[tuple[int, int], str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    key = (hasher.time_cost, hasher.memory_cost)
    if key not in _DUMMY_HASH:
        _DUMMY_HASH[key] = hasher.hash(uuid.uuid4().hex)
    return _DUMMY_HASH[key]


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    # A sign-in that cancelled a pending account deletion (app/privacy/deletion.py).
    deletion_cancelled: bool = False


def _issue(
    session: Session, user: User, auth_session: AuthSession, settings: AuthSettings
) -> TokenPair:
    minutes = settings.access_token_minutes
    claims = {"sid": str(auth_session.id), "roles": list(user.roles)}
    access = create_access_token(
        identity=str(user.id),
        additional_claims=claims,
        expires_delta=dt.timedelta(minutes=minutes),
    )
    refresh_expires = dt.timedelta(days=settings.refresh_token_days)
    refresh = create_refresh_token(
        identity=str(user.id),
        additional_claims={"sid": str(auth_session.id)},
        expires_delta=refresh_expires,
    )
    session.add(
        RefreshToken(
            jti=uuid.UUID(decode_token(refresh)["jti"]),
            session_id=auth_session.id,
            issued_at=_now(),
            expires_at=_now() + refresh_expires,
        )
    )
    session.flush()
    return TokenPair(access, refresh, minutes * 60)


def start_session(session: Session, user: User, settings: AuthSettings) -> TokenPair:
    """A new signed-in session for `user` (sign-in, and registration's own first session)."""
    auth_session = AuthSession(id=uuid.uuid4(), user_id=user.id, created_at=_now())
    session.add(auth_session)
    session.flush()
    return _issue(session, user, auth_session, settings)


def login(session: Session, phone: str, password: str, settings: AuthSettings) -> TokenPair:
    """A new session for the right phone and password. The answer to a wrong phone, a wrong
    password or a disabled account is the same, and takes about as long."""
    hasher = _hasher(settings)
    try:
        normalized = validators.normalize_phone(phone)
    except validators.InvalidInput:
        normalized = None
    user = (
        session.scalar(select(User).where(User.phone_hmac == phone_lookup(normalized)))
        if normalized
        else None
    )
    try:
        hasher.verify(user.password_hash if user else _dummy_hash(hasher), password)
        ok = user is not None and user.is_active
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        # The account a failed attempt named (if any) goes on record, in its own transaction;
        # the phone number itself does not.
        audit.record_now(
            "auth.login",
            actor=user,
            object_type="user" if user else None,
            object_ids=[user.id] if user else [],
            outcome="failure",
        )
        raise AuthenticationFailed(_("Wrong phone number or password."))
    audit.record(session, "auth.login", actor=user, object_type="user", object_ids=[user.id])
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    announced = signals.signed_in.send(session=session, user=user)
    cancelled = any(answer for _receiver, answer in announced)
    return replace(start_session(session, user, settings), deletion_cancelled=cancelled)


def check_password(
    session: Session,
    user: User,
    password: str,
    settings: AuthSettings,
    field: str = "password",
) -> None:
    """The signed-in user's password, re-entered to confirm an act; 422 on `field` if wrong."""
    try:
        _hasher(settings).verify(user.password_hash, password)
    except (VerificationError, InvalidHashError) as exc:
        raise _field_error(field, _("The password is wrong.")) from exc


# What a request may read of its user's areas without another query: all but the geometries.
_JURISDICTION_COLUMNS = (
    Area.id,
    Area.code,
    Area.name,
    Area.level,
    Area.parent_id,
    Area.district_id,
    Area.subdistrict_id,
    Area.community_id,
)


def live_user(session: Session, user_id: str, session_id: str | None) -> User | None:
    """The active user of a token whose session has not been revoked (None otherwise), with
    their jurisdiction, in one statement: `jurisdiction_of(user)` then needs no query."""
    try:
        uid, sid = uuid.UUID(user_id), uuid.UUID(session_id or "")
    except (TypeError, ValueError):
        return None
    return (
        session.execute(
            select(User)
            .options(joinedload(User.jurisdiction).load_only(*_JURISDICTION_COLUMNS))
            .join(AuthSession, AuthSession.user_id == User.id)
            .where(
                User.id == uid,
                User.status == "active",
                AuthSession.id == sid,
                AuthSession.revoked_at.is_(None),
            )
            # What the database says now, also when the session holds the user already.
            .execution_options(populate_existing=True)
        )
        .unique()
        .scalar_one_or_none()
    )


def revoke_session(session: Session, session_id: uuid.UUID, reason: str) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=_now(), revoked_reason=reason)
    )


def revoke_all_sessions(session: Session, user_id: uuid.UUID, reason: str) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=_now(), revoked_reason=reason)
    )


def refresh(
    session: Session, user: User, jti: str, session_id: str, settings: AuthSettings
) -> TokenPair:
    """Rotate: the presented refresh token is spent and a new pair issued in the same session.

    A refresh token presented a second time means it was copied: the whole session (every token
    of the family) is revoked and RefreshTokenReused raised; the caller commits the revocation.
    """
    token = session.scalar(
        select(RefreshToken).where(RefreshToken.jti == uuid.UUID(jti)).with_for_update()
    )
    if token is None or str(token.session_id) != session_id:
        raise AuthenticationFailed(_("Unknown refresh token."))
    if token.used_at is not None:
        revoke_session(session, token.session_id, "refresh_token_reuse")
        raise RefreshTokenReused("This refresh token was used before; the session is revoked.")
    token.used_at = _now()
    auth_session = session.get(AuthSession, token.session_id)
    auth_session.refreshed_at = _now()
    return _issue(session, user, auth_session, settings)


# --- profiles -----------------------------------------------------------------------------------


def update_me(session: Session, user: User, values: dict[str, Any]) -> User:
    """What a volunteer may change about themselves. Moving to another community withdraws the
    verification (staff of the new community verify again). The ID-number consent may be
    withdrawn here, not given: it is given with the number, at registration."""
    if values.get("id_number_consent") and not user.id_number_consent:
        raise _field_error(
            "id_number_consent",
            _("This consent is given with the ID number itself, at registration."),
        )
    if "volunteer_types" in values:
        user.volunteer_types = sorted(set(values["volunteer_types"]))
    if "skills" in values:
        user.skills = sorted(set(values["skills"]))
    if "home_community_id" in values and values["home_community_id"] != user.home_community_id:
        user.home_community_id = _community_id(session, values["home_community_id"])
        user.verified_at = None
        user.verified_by = None
    if "location_sharing" in values:
        set_location_sharing(session, user, values["location_sharing"])
    if "sms_consent" in values:
        set_sms_consent(session, user, values["sms_consent"])
    if values.get("id_number_consent") is False:
        withdraw_id_number_consent(session, user)
    session.flush()
    return user


def change_password(
    session: Session,
    user: User,
    current: str,
    new: str,
    keep_session: uuid.UUID,
    settings: AuthSettings,
) -> None:
    """Change the password and sign out every other session."""
    hasher = _hasher(settings)
    try:
        hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError) as exc:
        raise _field_error("current_password", _("The current password is wrong.")) from exc
    _validated(
        "new_password", validators.check_password, new, user_inputs=(user.phone, user.real_name)
    )
    user.password_hash = hasher.hash(new)
    session.execute(
        update(AuthSession)
        .where(
            AuthSession.user_id == user.id,
            AuthSession.id != keep_session,
            AuthSession.revoked_at.is_(None),
        )
        .values(revoked_at=_now(), revoked_reason="password_changed")
    )
    session.flush()


# --- staff administration -----------------------------------------------------------------------

# Which roles an administrator may hand out: admins any; community admins the staff roles of
# their own areas (not police liaison: liaisons are appointed by admins).
_GRANTABLE = {
    ADMIN: set(ROLES),
    COMMUNITY_ADMIN: {VOLUNTEER, GRID_STAFF, COMMUNITY_ADMIN},
}
_STAFF_ROLES = {GRID_STAFF, COMMUNITY_ADMIN}


def _check_roles(roles: Iterable[str], areas: Sequence[Area]) -> None:
    """A consistent set of roles: staff and liaisons have areas; a liaison is not also staff,
    since a user's areas serve all their roles and liaisons see no volunteers' personal data."""
    roles = set(roles)
    if roles & (_STAFF_ROLES | {POLICE_LIAISON}) and not areas:
        raise _field_error("jurisdiction", _("Staff and liaison accounts need at least one area."))
    if POLICE_LIAISON in roles and roles & _STAFF_ROLES:
        raise _field_error("roles", _("A police liaison account cannot also be a staff account."))


def grantable_roles(actor: User) -> set[str]:
    """The roles this actor may grant (the console offers exactly these)."""
    allowed: set[str] = set()
    for role in actor.roles:
        allowed |= _GRANTABLE.get(role, set())
    return allowed


def _check_grants(actor: User, roles: Iterable[str], areas: Sequence[Area]) -> None:
    """The actor may grant these roles, and every area is inside their jurisdiction."""
    refused = set(roles) - grantable_roles(actor)
    if refused:
        raise Forbidden(
            _("You may not grant the role(s): %(value)s.", value=", ".join(sorted(refused)))
        )
    scope = jurisdiction_of(actor)
    outside = [a.code for a in areas if not scope.covers(a.path_ids)]
    if outside:
        raise Forbidden(
            _("These areas are outside your jurisdiction: %(value)s.", value=", ".join(outside))
        )


def check_manages(session: Session, actor: User, user: User) -> None:
    """The actor may administer this account: never their own; only when the actor may grant
    every role the account holds (so only admins change admins and police liaisons, whom only
    admins appoint); and only when everything the account holds (its home community and every
    granted area) is inside the actor's jurisdiction. Seeing an account is not enough."""
    if user.id == actor.id:
        raise Forbidden(_("Nobody administers their own account."))
    beyond = set(user.roles) - grantable_roles(actor)
    if beyond:
        raise Forbidden(
            _(
                "Only an admin may change an account with the role(s): %(value)s.",
                value=", ".join(sorted(beyond)),
            )
        )
    scope = jurisdiction_of(actor)
    home = session.get(Area, user.home_community_id) if user.home_community_id else None
    places = [a.path_ids for a in user.jurisdiction] + ([home.path_ids] if home else [])
    if not all(scope.covers(p) for p in places):
        raise Forbidden(_("This account also holds areas outside your jurisdiction."))


def _areas(session: Session, area_ids: Sequence[uuid.UUID]) -> list[Area]:
    areas = list(session.scalars(select(Area).where(Area.id.in_(area_ids))))
    if len(areas) != len(set(area_ids)):
        raise _field_error("jurisdiction", _("Unknown area id."))
    return areas


def create_account(
    session: Session, actor: User | None, values: dict[str, Any], settings: AuthSettings
) -> User:
    """An account created by an administrator (actor None: the operator's CLI), with its home
    community and areas inside the administrator's jurisdiction."""
    roles = sorted(set(values["roles"]))
    areas = _areas(session, values.get("jurisdiction", []))
    home_id = _community_id(session, values.get("home_community_id"))
    if actor is not None:
        _check_grants(actor, roles, areas + ([session.get(Area, home_id)] if home_id else []))
    _check_roles(roles, areas)
    user = _new_user(
        session,
        values,
        id_number_consent=bool(values.get("id_number_consent")),
        consent_pointer="id_number_consent",
        settings=settings,
        roles=roles,
        jurisdiction=areas,
    )
    audit.record(
        session,
        "user.created",
        actor=actor,
        object_type="user",
        object_ids=[user.id],
        details={"roles": roles, "jurisdiction": sorted(str(a.id) for a in areas)},
    )
    return user


def list_visible_users(
    session: Session, actor: User, filters: dict[str, Any]
) -> tuple[Select, Select]:
    """Accounts the actor may see, as (page query, count query): staff see those whose home
    community is inside their jurisdiction, or who were granted an area inside it; admins all."""
    scope = jurisdiction_of(actor)
    query = select(User)
    if not scope.everywhere:
        home = aliased(Area)
        granted = aliased(Area)
        inside_home = (
            select(home.id)
            .where(home.id == User.home_community_id)
            .where(scope.clause(area_path_columns(home)))
        )
        inside_grant = (
            select(user_areas.c.user_id)
            .join(granted, granted.id == user_areas.c.area_id)
            .where(user_areas.c.user_id == User.id)
            .where(scope.clause(area_path_columns(granted)))
        )
        query = query.where(or_(inside_home.exists(), inside_grant.exists()))
    if filters.get("role"):
        query = query.where(User.roles.contains([filters["role"]]))
    if filters.get("community_id"):
        query = query.where(User.home_community_id == filters["community_id"])
    if filters.get("verified") is not None:
        query = query.where(
            User.verified_at.is_not(None) if filters["verified"] else User.verified_at.is_(None)
        )
    if filters.get("status"):
        query = query.where(User.status == filters["status"])
    return query.order_by(User.created_at, User.id), query


def get_visible_user(session: Session, actor: User, user_id: uuid.UUID) -> User:
    """A user the actor may see (404 otherwise): themselves, or inside their jurisdiction."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(_("No such user."))
    if user.id == actor.id:
        return user
    scope = jurisdiction_of(actor)
    home = session.get(Area, user.home_community_id) if user.home_community_id else None
    places = [home.path_ids] if home else []
    places += [a.path_ids for a in user.jurisdiction]
    if scope.everywhere or any(scope.covers(p) for p in places):
        return user
    raise NotFound(_("No such user."))


def update_account(session: Session, actor: User, user: User, values: dict[str, Any]) -> User:
    """Roles, jurisdiction, status and name, by an administrator of everything the account
    holds; roles granted or taken away must be ones the administrator may grant."""
    check_manages(session, actor, user)
    before = {
        "roles": list(user.roles),
        "jurisdiction": sorted(str(a.id) for a in user.jurisdiction),
        "status": user.status,
    }
    if "roles" in values or "jurisdiction" in values:
        roles = sorted(set(values.get("roles", user.roles)))
        areas = (
            _areas(session, values["jurisdiction"])
            if "jurisdiction" in values
            else list(user.jurisdiction)
        )
        _check_grants(actor, set(roles) ^ set(user.roles), areas)
        _check_roles(roles, areas)
        user.roles = roles
        user.jurisdiction = areas
    if "status" in values:
        user.status = values["status"]
        if user.status == "disabled":
            revoke_all_sessions(session, user.id, "account_disabled")
    if "real_name" in values:
        user.real_name = values["real_name"].strip()
    after = {
        "roles": list(user.roles),
        "jurisdiction": sorted(str(a.id) for a in user.jurisdiction),
        "status": user.status,
    }
    changed = {
        key: {"from": before[key], "to": after[key]} for key in before if before[key] != after[key]
    }
    if changed:
        audit.record(
            session,
            "user.updated",
            actor=actor,
            object_type="user",
            object_ids=[user.id],
            details=changed,
        )
    session.flush()
    return user


def verify_volunteer(session: Session, actor: User, user: User) -> User:
    """Staff of a volunteer's home community confirm their real-name registration."""
    if user.id == actor.id:
        raise Forbidden(_("Nobody verifies their own registration."))
    if VOLUNTEER not in user.roles:
        raise Conflict(_("Only volunteers are verified."))
    home = session.get(Area, user.home_community_id) if user.home_community_id else None
    if home is None or not jurisdiction_of(actor).covers(home.path_ids):
        raise Forbidden(_("Only staff of the volunteer's home community verify them."))
    if user.verified_at is None:
        user.verified_at = _now()
        user.verified_by = actor.id
        audit.record(
            session, "user.verified", actor=actor, object_type="user", object_ids=[user.id]
        )
    session.flush()
    return user
