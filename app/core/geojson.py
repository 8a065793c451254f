"""GeoJSON (RFC 7946) answers as OpenAPI schemas: FeatureCollections of typed features.

The answers themselves are built by geo.geojson; these schemas document them, so that a generated
client gets a FeatureCollection of Features with a Point (or cell polygon) and typed properties.
"""

from __future__ import annotations

from marshmallow import Schema, fields

GEOJSON_MIMETYPE = "application/geo+json"

_NUMBERS = {"type": "array", "items": {"type": "number"}}


class GeoJSONPointSchema(Schema):
    type = fields.String(required=True, metadata={"enum": ["Point"]})
    coordinates = fields.List(
        fields.Float(),
        required=True,
        metadata={"minItems": 2, "maxItems": 2, "description": "[lon, lat] in `crs`"},
    )


class CellGeometrySchema(Schema):
    """A cell: an H3 hexagon or square (Polygon) or an administrative area (MultiPolygon)."""

    type = fields.String(required=True, metadata={"enum": ["Polygon", "MultiPolygon"]})
    coordinates = fields.Raw(
        required=True,
        metadata={
            "description": "Polygon: rings of [lon, lat]; MultiPolygon: polygons of rings",
            "type": "array",
            "items": {
                "type": "array",
                "items": {"type": "array", "items": {"oneOf": [{"type": "number"}, _NUMBERS]}},
            },
        },
    )


class CellPropertiesSchema(Schema):
    """`cell_id` and `name`, then the figures of the answer (counts, minutes, scores)."""

    class Meta:
        unknown = "include"

    cell_id = fields.String(required=True)
    name = fields.String(allow_none=True, required=True)


def feature_collection_of(
    name: str, geometry: type[Schema], properties: type[Schema], **members: fields.Field
) -> type[Schema]:
    """`<name>FeatureCollectionSchema` of `<name>FeatureSchema`s (documented as `<name>Feature…`);
    `members` are extra top-level members (a page's `page` and `total`)."""
    feature = type(
        f"{name}FeatureSchema",
        (Schema,),
        {
            "type": fields.String(required=True, metadata={"enum": ["Feature"]}),
            "id": fields.String(),
            "geometry": fields.Nested(geometry, required=True, allow_none=True),
            "properties": fields.Nested(properties, required=True),
        },
    )
    return type(
        f"{name}FeatureCollectionSchema",
        (Schema,),
        {
            "type": fields.String(required=True, metadata={"enum": ["FeatureCollection"]}),
            "features": fields.List(fields.Nested(feature), required=True),
            **members,
        },
    )


CellFeatureCollectionSchema = feature_collection_of(
    "Cell", CellGeometrySchema, CellPropertiesSchema
)
