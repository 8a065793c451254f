"""Team payloads."""

from __future__ import annotations

import datetime as dt

from marshmallow import Schema, fields, validate

from app.core.fields import BoundedDate
from app.core.pagination import page_of
from app.teams.models import FILING_STATUSES, MEMBER_ROLES, SERVICE_TYPES, TEAM_KINDS

# Filing and revocation are past events, registered in the People's Republic (founded 1949-10-01);
# a day ahead allows for time zones.
_FILING_DATES = {"earliest": dt.date(1949, 10, 1), "latest": dt.timedelta(days=1)}


class TeamSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    kind = fields.String(metadata={"enum": list(TEAM_KINDS)})
    service_type = fields.String(allow_none=True, metadata={"enum": list(SERVICE_TYPES)})
    area_id = fields.UUID()
    subdistrict_id = fields.UUID(allow_none=True)
    community_id = fields.UUID(allow_none=True)
    brand = fields.Boolean()
    filing_status = fields.String(metadata={"enum": list(FILING_STATUSES)})
    filed_on = fields.Date(allow_none=True)
    revoked_on = fields.Date(allow_none=True)
    leader_id = fields.UUID(allow_none=True)
    created_at = fields.DateTime()


class TeamCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    kind = fields.String(required=True, validate=validate.OneOf(TEAM_KINDS))
    service_type = fields.String(load_default=None, validate=validate.OneOf(SERVICE_TYPES))
    area_id = fields.UUID(required=True, metadata={"description": "a community or sub-district"})
    brand = fields.Boolean(load_default=False)
    filing_status = fields.String(load_default="unfiled", validate=validate.OneOf(FILING_STATUSES))
    filed_on = BoundedDate(load_default=None, **_FILING_DATES)


class TeamUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(1, 200))
    service_type = fields.String(allow_none=True, validate=validate.OneOf(SERVICE_TYPES))
    brand = fields.Boolean()
    filing_status = fields.String(validate=validate.OneOf(FILING_STATUSES))
    filed_on = BoundedDate(allow_none=True, **_FILING_DATES)
    revoked_on = BoundedDate(allow_none=True, **_FILING_DATES)


class TeamQueryArgsSchema(Schema):
    kind = fields.String(validate=validate.OneOf(TEAM_KINDS))
    area_id = fields.UUID()
    filing_status = fields.String(validate=validate.OneOf(FILING_STATUSES))


class MemberSchema(Schema):
    user_id = fields.UUID()
    role = fields.String(metadata={"enum": list(MEMBER_ROLES)})
    joined_at = fields.DateTime()


class MemberCreateSchema(Schema):
    user_id = fields.UUID(required=True)
    role = fields.String(load_default="member", validate=validate.OneOf(MEMBER_ROLES))


class TargetArgsSchema(Schema):
    area_id = fields.UUID(metadata={"description": "district, sub-district or community"})


class CommunityTargetSchema(Schema):
    community_id = fields.UUID()
    code = fields.String()
    name = fields.String()
    urban_rural = fields.String(allow_none=True)
    target = fields.Integer(metadata={"description": "15 urban, 8 rural"})
    organisations = fields.Integer(metadata={"description": "community organisations not revoked"})
    short_by = fields.Integer()
    brand_target = fields.Integer()
    brand_organisations = fields.Integer()
    brand_short_by = fields.Integer()


class TargetsSummarySchema(Schema):
    communities = fields.Integer()
    communities_short = fields.Integer()
    communities_short_of_brand = fields.Integer()
    organisations = fields.Integer()


class TargetsPageSchema(page_of(CommunityTargetSchema)):
    summary = fields.Nested(TargetsSummarySchema, required=True)
