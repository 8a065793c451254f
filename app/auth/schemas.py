"""Request and response bodies of accounts and sessions; each lists its allowed fields."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.auth.models import VOLUNTEER_TYPES
from app.core.auth import ROLES

_TAG = validate.Length(min=1, max=40)
# Shapes only: the full rules (mobile prefixes, GB 11643 checksum, birth date) are checked by
# the service, which answers 422 with the reason.
_PHONE = validate.Regexp(r"^[+\d][\d\s()-]{9,19}$", error="Not a phone number.")
_ID_NUMBER = validate.Regexp(r"^\d{17}[\dXx]$", error="17 digits and a final digit or X.")


class ConsentsSchema(Schema):
    terms_version = fields.String(required=True, validate=validate.Length(1, 20))
    location_sharing = fields.Boolean(load_default=False)
    id_number = fields.Boolean(
        load_default=False,
        metadata={
            "description": "processing your resident ID number (kept as a keyed hash and a "
            "masked form only): a separate consent, required with the number; withdraw it with "
            "PATCH /api/v1/me {id_number_consent: false}"
        },
    )


class GuardianSchema(Schema):
    """A guardian consenting for a registrant under 18 (where minors are allowed at all)."""

    name = fields.String(required=True, validate=validate.Length(1, 50))
    phone = fields.String(required=True, validate=_PHONE)
    consent = fields.Boolean(required=True)


class RegisterSchema(Schema):
    phone = fields.String(required=True, validate=_PHONE, metadata={"example": "13800138000"})
    password = fields.String(required=True, load_only=True, validate=validate.Length(1, 200))
    real_name = fields.String(required=True, validate=validate.Length(1, 50))
    id_number = fields.String(required=True, load_only=True, validate=_ID_NUMBER)
    volunteer_types = fields.List(
        fields.String(validate=validate.OneOf(VOLUNTEER_TYPES)),
        load_default=list,
        validate=validate.Length(max=len(VOLUNTEER_TYPES)),
    )
    skills = fields.List(
        fields.String(validate=_TAG), load_default=list, validate=validate.Length(max=20)
    )
    home_community_id = fields.UUID(load_default=None)
    consents = fields.Nested(ConsentsSchema, required=True)
    guardian = fields.Nested(
        GuardianSchema,
        load_default=None,
        metadata={
            "description": "only for a registrant under 18 (the ID number's birth date), and "
            "only where MINORS_ALLOWED_WITH_GUARDIAN is on; refused otherwise (422 under-age)"
        },
    )


class LoginSchema(Schema):
    phone = fields.String(required=True, validate=validate.Length(1, 20))
    password = fields.String(required=True, load_only=True, validate=validate.Length(1, 200))
    device_token = fields.String(
        load_default=None,
        load_only=True,
        validate=validate.Length(1, 512),
        metadata={"description": "the device_token this device got at its last login"},
    )


class TokenPairSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "access token lifetime, s"})
    token_type = fields.Constant("Bearer")


class LoginAnswerSchema(TokenPairSchema):
    device_token = fields.String(
        required=True,
        metadata={
            "description": "keep it on this device and send it with its next logins: they are "
            "then limited per device, so others' failed attempts cannot lock you out"
        },
    )
    deletion_cancelled = fields.Boolean(
        required=True,
        metadata={
            "description": "true when this sign-in cancelled your pending account deletion "
            "(DELETE /api/v1/me): your account and data stay"
        },
    )


class ConsentStateSchema(Schema):
    terms_version = fields.String(allow_none=True)
    terms_accepted_at = fields.DateTime(allow_none=True)
    location_sharing = fields.Boolean()
    location_sharing_changed_at = fields.DateTime(allow_none=True)
    sms_consent = fields.Boolean()
    sms_consent_changed_at = fields.DateTime(allow_none=True)
    id_number_consent = fields.Boolean()
    id_number_consent_changed_at = fields.DateTime(allow_none=True)


class UserSchema(Schema):
    """An account as its owner and staff see it (never the ID number, only its masked form)."""

    id = fields.UUID()
    phone = fields.String()
    real_name = fields.String()
    id_number_masked = fields.String(allow_none=True)
    roles = fields.List(fields.String())
    volunteer_types = fields.List(fields.String())
    skills = fields.List(fields.String())
    home_community_id = fields.UUID(allow_none=True)
    status = fields.String()
    verified_at = fields.DateTime(allow_none=True)
    verified_by = fields.UUID(allow_none=True)
    jurisdiction = fields.List(
        fields.UUID(), attribute="jurisdiction_ids", metadata={"description": "granted area ids"}
    )
    consents = fields.Nested(ConsentStateSchema)
    created_at = fields.DateTime()


class RegisterAnswerSchema(LoginAnswerSchema):
    """The new account and a signed-in session, as sign-in gives: one round trip on a phone."""

    user = fields.Nested(UserSchema, required=True)


class TermsTextsSchema(Schema):
    zh_cn = fields.String(required=True, data_key="zh-CN")
    en = fields.String(required=True)


class TermsSchema(Schema):
    version = fields.String(
        required=True,
        metadata={"description": "send it as consents.terms_version when registering"},
    )
    texts = fields.Nested(
        TermsTextsSchema, required=True, metadata={"description": "Markdown, per language"}
    )


class MeUpdateSchema(Schema):
    """What a volunteer may change about themselves: no roles, no verification, no identity."""

    volunteer_types = fields.List(
        fields.String(validate=validate.OneOf(VOLUNTEER_TYPES)),
        validate=validate.Length(max=len(VOLUNTEER_TYPES)),
    )
    skills = fields.List(fields.String(validate=_TAG), validate=validate.Length(max=20))
    home_community_id = fields.UUID(allow_none=True)
    location_sharing = fields.Boolean()
    sms_consent = fields.Boolean(
        metadata={
            "description": "SMS when an urgent task's push is not received in time (a separate "
            "consent, off unless given; withdrawing stops SMS at once)"
        }
    )
    id_number_consent = fields.Boolean(
        metadata={
            "description": "false withdraws the consent to processing your ID number: its "
            "keyed hash and masked form are erased at once, and your verification with them; "
            "true is accepted only while the consent stands (it is given with the number)"
        }
    )


class PasswordChangeSchema(Schema):
    current_password = fields.String(
        required=True, load_only=True, validate=validate.Length(1, 200)
    )
    new_password = fields.String(required=True, load_only=True, validate=validate.Length(1, 200))


class AccountCreateSchema(Schema):
    phone = fields.String(required=True, validate=_PHONE)
    password = fields.String(required=True, load_only=True, validate=validate.Length(1, 200))
    real_name = fields.String(required=True, validate=validate.Length(1, 50))
    id_number = fields.String(load_only=True, validate=_ID_NUMBER)
    id_number_consent = fields.Boolean(
        load_default=False,
        metadata={
            "description": "the person's consent to processing the ID number: required "
            "with id_number"
        },
    )
    roles = fields.List(
        fields.String(validate=validate.OneOf(ROLES)), required=True, validate=validate.Length(1, 5)
    )
    jurisdiction = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=200))
    home_community_id = fields.UUID(load_default=None)


class AccountUpdateSchema(Schema):
    roles = fields.List(
        fields.String(validate=validate.OneOf(ROLES)), validate=validate.Length(max=5)
    )
    jurisdiction = fields.List(fields.UUID(), validate=validate.Length(max=200))
    status = fields.String(validate=validate.OneOf(["active", "disabled"]))
    real_name = fields.String(validate=validate.Length(1, 50))


class UserQueryArgsSchema(Schema):
    role = fields.String(validate=validate.OneOf(ROLES))
    community_id = fields.UUID()
    verified = fields.Boolean()
    status = fields.String(validate=validate.OneOf(["active", "disabled"]))
