"""Users, their consents, jurisdictions, and login sessions with rotating refresh tokens."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    LargeBinary,
    String,
    Table,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates
from sqlalchemy.types import TypeDecorator

from app.areas.models import Area
from app.core import field_crypto
from app.core.models import Timestamps
from app.extensions import db

VOLUNTEER_TYPES = (
    "community_volunteer",
    "patrol_team_member",
    "safety_information_officer",
    "migrant_population_liaison",
    "traffic_guide",
    "rider_social_worker",
)

user_areas = Table(
    "user_areas",
    db.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("area_id", ForeignKey("areas.id", ondelete="RESTRICT"), primary_key=True, index=True),
)


CONSENT_KINDS = ("terms", "location_sharing", "sms", "id_number", "guardian")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Encrypted(TypeDecorator):
    """Text stored encrypted (app/core/field_crypto.py), read back as text: the code keeps
    reading `user.phone`, also in selected columns. A ciphertext differs each time, so SQL can
    neither compare nor sort it: comparing raises, to send the query to the keyed hash."""

    impl = LargeBinary
    cache_ok = True

    class comparator_factory(LargeBinary.Comparator):
        def operate(self, op, *other, **kwargs):
            raise TypeError("an encrypted column cannot be compared in SQL: compare its keyed hash")

        def reverse_operate(self, op, other, **kwargs):
            return self.operate(op, other)

    def process_bind_param(self, value, dialect):
        return None if value is None else field_crypto.installed().encrypt(value)

    def process_result_value(self, value, dialect):
        return None if value is None else field_crypto.installed().decrypt(bytes(value))


def phone_lookup(phone: str) -> bytes:
    """The keyed hash users.phone_hmac holds: `User.phone_hmac == phone_lookup(normalized)`."""
    return field_crypto.installed().lookup(phone)


class User(Timestamps, db.Model):
    """A person with an account: volunteer, staff, liaison or admin (roles may combine).

    The resident ID number is never stored: only a keyed hash (uniqueness) and a masked form,
    and those only under the ID-number consent. Nor is the birth date it holds: registration
    reads the age from it and forgets it.
    """

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "roles <@ ARRAY['volunteer', 'grid_staff', 'community_admin', 'police_liaison', "
            "'admin']::varchar[]",
            name="known_roles",
        ),
        CheckConstraint("status IN ('active', 'disabled')", name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Encrypted at rest; found and kept unique by its keyed hash (lookup_phone)
    phone: Mapped[str] = mapped_column("phone_ciphertext", Encrypted)
    phone_hmac: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    real_name: Mapped[str] = mapped_column("real_name_ciphertext", Encrypted)
    id_number_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    id_number_masked: Mapped[str | None] = mapped_column(String(18))
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(20)), server_default="{}")
    volunteer_types: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default="{}")
    skills: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default="{}")
    home_community_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("areas.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[str] = mapped_column(String(10), server_default="active")
    # Made by `flask demo simulate`, not by a person (app/demo/simulate.py).
    generated: Mapped[bool] = mapped_column(Boolean, server_default="false")
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    verified_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    terms_version: Mapped[str | None] = mapped_column(String(20))
    terms_accepted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    location_sharing: Mapped[bool] = mapped_column(Boolean, server_default="false")
    location_sharing_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # SMS when an urgent task's push is not received in time: a consent of its own
    sms_consent: Mapped[bool] = mapped_column(Boolean, server_default="false")
    sms_consent_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Processing the resident ID number (its keyed hash and masked form): a consent of its own
    id_number_consent: Mapped[bool] = mapped_column(Boolean, server_default="false")
    id_number_consent_changed_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True)
    )

    jurisdiction: Mapped[list[Area]] = relationship(secondary=user_areas, lazy="selectin")

    @validates("phone")
    def _keep_phone_hmac(self, _key: str, phone: str) -> str:
        self.phone_hmac = phone_lookup(phone)
        return phone

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def jurisdiction_ids(self) -> list[uuid.UUID]:
        return sorted(a.id for a in self.jurisdiction)

    @property
    def consents(self) -> dict:
        return {
            "terms_version": self.terms_version,
            "terms_accepted_at": self.terms_accepted_at,
            "location_sharing": self.location_sharing,
            "location_sharing_changed_at": self.location_sharing_changed_at,
            "sms_consent": self.sms_consent,
            "sms_consent_changed_at": self.sms_consent_changed_at,
            "id_number_consent": self.id_number_consent,
            "id_number_consent_changed_at": self.id_number_consent_changed_at,
        }


class ConsentEvent(db.Model):
    """Append-only history of consents given and withdrawn (terms, location sharing, SMS, the
    ID number, a guardian's for a minor)."""

    __tablename__ = "consent_events"
    __table_args__ = (CheckConstraint(f"kind IN {CONSENT_KINDS!r}", name="kind"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(20))  # a terms version, or granted / withdrawn
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class GuardianConsent(db.Model):
    """Who consented for a volunteer registered under 18 (only where MINORS_ALLOWED_WITH_GUARDIAN
    is on): the guardian's name and phone, as given. Goes with the account's erasure."""

    __tablename__ = "guardian_consents"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    guardian_name: Mapped[str] = mapped_column("guardian_name_ciphertext", Encrypted)
    guardian_phone: Mapped[str] = mapped_column("guardian_phone_ciphertext", Encrypted)
    consented_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class AuthSession(db.Model):
    """One login: its refresh tokens form a family. Revoking the session (logout, refresh-token
    reuse, disabling the account) invalidates its access tokens at once, since every
    authenticated request checks that its session is live."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    refreshed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(40))


class RefreshToken(db.Model):
    """A refresh token issued in a session; it may be used once."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
