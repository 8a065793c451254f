"""Tip payloads. Request schemas list every allowed field (unknown fields are a 422)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from app.core.fields import (
    CLOCK_SKEW,
    COORD_SYSTEMS,
    HORIZON,
    BboxField,
    BoundedDateTime,
    FixSchema,
    PlainText,
)
from app.core.geojson import FormatArgsSchema, GeoJSONPointSchema, feature_collection_of
from app.core.i18n import _
from app.tips.models import PRIORITIES, STATUSES
from geo.crs import to_wgs84

CODE_PATTERN = r"^[0-9A-Za-z]{10}$"
_CATEGORY_CODE = validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$")


class TipCreateSchema(Schema):
    category = fields.String(required=True, validate=_CATEGORY_CODE)
    description = PlainText(required=True, validate=validate.Length(1, 4000))
    location = fields.Nested(FixSchema, load_default=None)
    address_text = PlainText(load_default=None, validate=validate.Length(1, 300))
    occurred_at = BoundedDateTime(load_default=None, latest=CLOCK_SKEW)
    media_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=6))
    # Only JSON true/false: the route decides the idempotency scope and the rate-limit bucket
    # from the raw body before this schema runs, so "true" or 1 must not mean anonymous here.
    anonymous = fields.Boolean(
        truthy={True},
        falsy={False},
        load_default=False,
        metadata={
            "description": "with a token: still store no link to you (without a token, "
            "every tip is anonymous)"
        },
    )
    police_contact_consent = fields.Boolean(
        load_default=False,
        metadata={"description": "named tips: the police may contact you about this tip"},
    )

    @validates_schema
    def _has_place(self, data, **_kwargs):
        if data.get("location") is None and not data.get("address_text"):
            raise ValidationError(_("Give a location, an address, or both."), "location")


class TipCreatedSchema(Schema):
    id = fields.UUID(required=True)
    status = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    follow_code = fields.String(
        allow_none=True, metadata={"description": "anonymous tips: with the secret, follow it"}
    )
    follow_secret = fields.String(
        allow_none=True,
        metadata={"description": "anonymous tips: shown once; send it as X-Follow-Secret"},
    )


class MediaRefSchema(Schema):
    id = fields.UUID()
    url = fields.String()
    thumbnail_url = fields.String()
    width = fields.Integer()
    height = fields.Integer()
    sha256 = fields.String()


class PublicEventSchema(Schema):
    at = fields.DateTime()
    kind = fields.String()
    status = fields.String(allow_none=True, attribute="to_status")
    note = fields.String(allow_none=True)


class FollowViewSchema(Schema):
    """What an anonymous tipster sees: no staff names, no internal notes."""

    code = fields.String()
    category = fields.String(attribute="category_code")
    status = fields.String(metadata={"description": "of the tip it was merged into, if merged"})
    created_at = fields.DateTime()
    status_changed_at = fields.DateTime()
    merged = fields.Boolean()
    history = fields.List(fields.Nested(PublicEventSchema))


class InfoSchema(Schema):
    """More from the tipster: `note` (as every free text added to a tip's history is called,
    and as the history shows it) and photos."""

    note = PlainText(required=True, validate=validate.Length(1, 4000))
    media_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=6))


class LonLatSchema(Schema):
    lon = fields.Float()
    lat = fields.Float()
    accuracy_m = fields.Float(allow_none=True)


class OwnTipSchema(Schema):
    """A named reporter's own tip."""

    id = fields.UUID()
    category = fields.String(attribute="category_code")
    description = fields.String()
    address_text = fields.String(allow_none=True)
    location = fields.Nested(LonLatSchema, allow_none=True)
    occurred_at = fields.DateTime(allow_none=True)
    status = fields.String()
    police_contact_consent = fields.Boolean()
    created_at = fields.DateTime()
    status_changed_at = fields.DateTime()
    media = fields.List(fields.Nested(MediaRefSchema))
    history = fields.List(fields.Nested(PublicEventSchema))


class TipSchema(Schema):
    """A tip as staff see it. Who sent a named tip is a separate, narrower read
    (GET /tips/{id}/reporter)."""

    id = fields.UUID()
    code = fields.String()
    category = fields.String(attribute="category_code")
    description = fields.String()
    address_text = fields.String(allow_none=True)
    location = fields.Nested(LonLatSchema, allow_none=True)
    occurred_at = fields.DateTime(allow_none=True)
    status = fields.String(metadata={"enum": list(STATUSES)})
    priority = fields.String(metadata={"enum": list(PRIORITIES)})
    anonymous = fields.Boolean()
    assignee_id = fields.UUID(allow_none=True)
    merged_into_id = fields.UUID(allow_none=True)
    outside_areas = fields.Boolean()
    district_id = fields.UUID(allow_none=True)
    subdistrict_id = fields.UUID(allow_none=True)
    community_id = fields.UUID(allow_none=True)
    grid_cell_id = fields.UUID(allow_none=True)
    created_at = fields.DateTime()
    status_changed_at = fields.DateTime()
    public_summary = fields.String(
        allow_none=True, metadata={"description": "what Open311 publishes (staff-approved)"}
    )
    public_summary_at = fields.DateTime(allow_none=True)
    version = fields.Integer()


class EventSchema(Schema):
    id = fields.UUID()
    at = fields.DateTime()
    kind = fields.String()
    actor_id = fields.UUID(allow_none=True)
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    public = fields.Boolean()
    data = fields.Dict()


class TipRefSchema(Schema):
    id = fields.UUID()
    code = fields.String()
    status = fields.String()
    created_at = fields.DateTime()


class DuplicatesSchema(Schema):
    merged = fields.List(fields.Nested(TipRefSchema))
    candidates = fields.List(fields.Nested(TipRefSchema))


class TipDetailSchema(TipSchema):
    media = fields.List(fields.Nested(MediaRefSchema))
    history = fields.List(fields.Nested(EventSchema))
    duplicates = fields.Nested(DuplicatesSchema)


class ReporterSchema(Schema):
    id = fields.UUID()
    real_name = fields.String()
    phone = fields.String()
    police_contact_consent = fields.Boolean()


class TipListArgsSchema(FormatArgsSchema):
    status = fields.List(fields.String(validate=validate.OneOf(STATUSES)), load_default=list)
    category = fields.List(fields.String(validate=_CATEGORY_CODE), load_default=list)
    priority = fields.List(fields.String(validate=validate.OneOf(PRIORITIES)), load_default=list)
    from_ = BoundedDateTime(data_key="from", load_default=None, latest=HORIZON)
    to = BoundedDateTime(load_default=None, latest=HORIZON)
    area_id = fields.UUID(load_default=None)
    bbox = BboxField(
        load_default=None,
        metadata={
            "description": "min lon,min lat,max lon,max lat (in `coord_system`)",
            "type": "string",
        },
    )
    coord_system = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))
    q = fields.String(
        load_default=None,
        validate=validate.Length(1, 100),
        metadata={"description": "text in the description or address"},
    )
    anonymous = fields.Boolean(load_default=None)
    crs = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))

    @post_load
    def _bbox_to_wgs84(self, data, **_kwargs):
        if data["bbox"] is not None:
            west, south, east, north = data["bbox"]
            data["bbox"] = (
                *to_wgs84(west, south, data["coord_system"]),
                *to_wgs84(east, north, data["coord_system"]),
            )
        if data["from_"] and data["to"] and data["from_"] >= data["to"]:
            raise ValidationError(_("`from` must be before `to`."), "from")
        return data


class CrsArgsSchema(Schema):
    crs = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))


class NearbyArgsSchema(Schema):
    lon = fields.Float(required=True, validate=validate.Range(-180, 180))
    lat = fields.Float(required=True, validate=validate.Range(-90, 90))
    coord_system = fields.String(load_default="wgs84", validate=validate.OneOf(COORD_SYSTEMS))
    category = fields.String(required=True, validate=_CATEGORY_CODE)


class NearbyTipSchema(Schema):
    category = fields.String()
    status = fields.String()
    hour = fields.DateTime(metadata={"description": "when it was reported, to the hour"})
    within_m = fields.Integer(
        metadata={"description": "a distance band: 50, 100, 250, 500, 1000, 2500 or 5000 m"}
    )


class NearbyListSchema(Schema):
    items = fields.List(fields.Nested(NearbyTipSchema), required=True)


class TransitionSchema(Schema):
    to = fields.String(
        required=True, validate=validate.OneOf([s for s in STATUSES if s != "merged"])
    )
    note = PlainText(load_default=None, validate=validate.Length(1, 2000))
    public = fields.Boolean(
        load_default=False, metadata={"description": "the reporter sees the note"}
    )
    assignee_id = fields.UUID(load_default=None, metadata={"description": "for `assigned`"})


class TipUpdateSchema(Schema):
    category = fields.String(validate=_CATEGORY_CODE)
    priority = fields.String(validate=validate.OneOf(PRIORITIES))


class PublicSummarySchema(Schema):
    summary = PlainText(
        required=True,
        allow_none=True,
        validate=validate.Length(1, 500),
        metadata={"description": "in your words, nothing that identifies anyone; null withdraws"},
    )


class NoteSchema(Schema):
    note = PlainText(required=True, validate=validate.Length(1, 2000))
    public = fields.Boolean(load_default=False)


class MergeSchema(Schema):
    into = fields.UUID(required=True, metadata={"description": "the tip that stays"})


class CategorySchema(Schema):
    code = fields.String()
    name = fields.String()
    name_en = fields.String()
    description = fields.String(allow_none=True)
    default_priority = fields.String(metadata={"enum": list(PRIORITIES)})
    duplicate_radius_m = fields.Integer()
    duplicate_window_hours = fields.Integer()
    active = fields.Boolean()
    sort_order = fields.Integer()


class CategoryListSchema(Schema):
    items = fields.List(fields.Nested(CategorySchema), required=True)


class CategoryUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(1, 100))
    name_en = fields.String(validate=validate.Length(1, 100))
    description = fields.String(allow_none=True, validate=validate.Length(max=500))
    default_priority = fields.String(validate=validate.OneOf(PRIORITIES))
    duplicate_radius_m = fields.Integer(validate=validate.Range(10, 5000))
    duplicate_window_hours = fields.Integer(validate=validate.Range(1, 720))
    active = fields.Boolean()
    sort_order = fields.Integer(validate=validate.Range(0, 10_000))


class CategoryCreateSchema(CategoryUpdateSchema):
    code = fields.String(required=True, validate=_CATEGORY_CODE)
    name = fields.String(required=True, validate=validate.Length(1, 100))
    name_en = fields.String(required=True, validate=validate.Length(1, 100))


class CategoryArgsSchema(Schema):
    include_inactive = fields.Boolean(load_default=False, metadata={"description": "admins"})


class PurposeArgsSchema(Schema):
    purpose = PlainText(
        required=True,
        validate=validate.Length(3, 300),
        metadata={"description": "why you need it (kept on the audit trail)"},
    )


class TipPropertiesSchema(TipSchema):
    """A tip as a GeoJSON Feature's properties: its location is the geometry."""

    class Meta:
        exclude = ("location",)


TipFeatureCollectionSchema = feature_collection_of(
    "Tip",
    GeoJSONPointSchema,
    TipPropertiesSchema,
    page=fields.Integer(required=True),
    total=fields.Integer(required=True, metadata={"description": "tips in all pages"}),
)
