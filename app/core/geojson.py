"""GeoJSON (RFC 7946) answers: which format a client asked for, the coordinate system an answer
is in, and OpenAPI schemas of FeatureCollections of typed features.

The answers themselves are built by geo.geojson; these schemas document them, so that a generated
client gets a FeatureCollection of Features with a Point (or cell polygon) and typed properties.

Format. An endpoint that answers JSON or GeoJSON takes `f=json|geojson` (as OGC API Features
does) and otherwise reads `Accept`; `f` wins. GIS tools cannot choose by `Accept`: GDAL (and so
QGIS) sends `Accept: text/plain, application/json`, so they ask with `f=geojson`. Endpoints that
answer only GeoJSON take `f=geojson` and refuse `f=json` (422), rather than answer GeoJSON to a
client that asked for something else. An unknown `f` is a 422, as any bad query parameter.

Coordinate system. GeoJSON is WGS-84 unless the client asked for another system with `crs=`.
A GCJ-02 or BD-09 answer says so twice, since RFC 7946 has no way to: a `Content-Crs` header
(OGC API Features part 2) `<urn:qunfang:crs:gcj02>` (or `bd09`), and the GeoJSON 2008 `crs`
member `{"type": "name", "properties": {"name": <WKT2 of a geographic CRS "GCJ-02 …">}}`.
The name is WKT rather than the URN because that is what GDAL (QGIS) reads: it takes a name
it cannot parse for no member at all and labels the layer WGS 84 (~600 m off in Beijing); with
the WKT, the layer's CRS is a custom "GCJ-02" (on a datum of its own, so no tool takes it for
WGS 84). A WGS-84 answer carries `Content-Crs: <http://www.opengis.net/def/crs/OGC/1.3/CRS84>`
and no member (RFC 7946 GeoJSON).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Response, request
from marshmallow import Schema, fields, validate

from app.core import fastjson
from geo.crs import CoordSystem
from geo.geojson import feature, feature_collection

# The one place the media types are named; `@blp.response(..., content_type=GEOJSON)` too.
GEOJSON = "application/geo+json"
JSON = fastjson.JSON

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def crs_uri(crs: str) -> str:
    """The URI an answer in coordinate system `crs` is labelled with."""
    if CoordSystem(crs) == CoordSystem.WGS84:
        return CRS84_URI
    return f"urn:qunfang:crs:{CoordSystem(crs).value}"


def crs_headers(crs: str) -> dict[str, str]:
    """The `Content-Crs` header of a GeoJSON answer in `crs`."""
    return {"Content-Crs": f"<{crs_uri(crs)}>"}


_WKT = (
    'GEOGCRS["{name} ({uri})",'
    'DATUM["{name} (obfuscated WGS 84, not a geodetic datum)",'
    'ELLIPSOID["WGS 84",6378137,298.257223563]],'
    "CS[ellipsoidal,2],"
    'AXIS["longitude",east,ANGLEUNIT["degree",0.0174532925199433]],'
    'AXIS["latitude",north,ANGLEUNIT["degree",0.0174532925199433]]]'
)
_NAMES = {CoordSystem.GCJ02: "GCJ-02", CoordSystem.BD09: "BD-09"}


def crs_wkt(crs: str) -> str:
    """WKT2 of the non-WGS-84 system `crs`, as GDAL reads it from a GeoJSON `crs` member."""
    system = CoordSystem(crs)
    return _WKT.format(name=_NAMES[system], uri=crs_uri(system))


def with_crs(document: dict[str, Any], crs: str) -> dict[str, Any]:
    """`document` with the GeoJSON 2008 `crs` member when `crs` is not WGS-84 (which RFC 7946
    GeoJSON is without one); the member comes right after `type`, where readers look first."""
    if CoordSystem(crs) == CoordSystem.WGS84:
        return document
    member = {"type": "name", "properties": {"name": crs_wkt(crs)}}
    head = {"type": document["type"], "crs": member} if "type" in document else {"crs": member}
    return {**head, **document}


def answer(
    collection: dict[str, Any] | bytes,
    crs: str,
    *,
    content_etag: bool = False,
    headers: dict[str, str] | None = None,
    lenient: bool = False,
) -> Response:
    """The one way a GeoJSON answer is made: `collection` labelled with `crs` (the member and
    `Content-Crs`), as application/geo+json, written by orjson. `collection` may be JSON text
    PostgreSQL wrote already: then it must be WGS-84 (it gets the header, needs no member).
    `content_etag`: an ETag of the body, and 304 to If-None-Match (fastjson.answer);
    `lenient` as fastjson.dumps has it."""
    if isinstance(collection, bytes):
        if CoordSystem(crs) != CoordSystem.WGS84:
            raise ValueError("JSON text from the database is WGS-84 GeoJSON only")
        body: Any = collection
    else:
        body = fastjson.dumps(with_crs(collection, crs), lenient=lenient)
    return fastjson.answer(
        body,
        mimetype=GEOJSON,
        content_etag=content_etag,
        headers={**(headers or {}), **crs_headers(crs)},
    )


def point_collection(
    items: Iterable[dict[str, Any]], position: Callable[[dict[str, Any]], Any]
) -> dict[str, Any]:
    """Listed items as a FeatureCollection of Points: `position(properties)` takes the item's
    position out of its (copied) properties as [lon, lat], or None (the item has no place and
    is left out of the map); every other field is a property, the id the Feature's id."""
    features = []
    for values in items:
        properties = dict(values)
        at = position(properties)
        if at is not None:
            point = {"type": "Point", "coordinates": list(at)}
            features.append(feature(point, properties, properties.get("id")))
    return feature_collection(features)


def wants_geojson() -> bool:
    """The client asked for GeoJSON: `f=geojson`, or without `f`, `Accept` prefers it to JSON.
    (`f` was validated by the view's FormatArgsSchema.)"""
    asked = request.args.get("f")
    if asked is not None:
        return asked == "geojson"
    best = request.accept_mimetypes.best_match([JSON, GEOJSON])
    return best == GEOJSON


class FormatArgsSchema(Schema):
    """`f`, for a query schema of an endpoint that answers JSON or GeoJSON (a mixin)."""

    f = fields.String(
        validate=validate.OneOf(["json", "geojson"]),
        metadata={
            "description": "The answer's format; without it, `Accept` decides "
            "(application/geo+json for GeoJSON). GIS tools use `f=geojson`."
        },
    )


class GeoJSONFormatArgsSchema(Schema):
    """`f`, for a query schema of an endpoint that answers GeoJSON only (a mixin)."""

    f = fields.String(
        validate=validate.OneOf(["geojson"]),
        metadata={"description": "The answer's format: GeoJSON only (`f=json` is a 422)."},
    )


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
            "crs": fields.Dict(
                metadata={
                    "description": "Only off WGS-84 (`crs=gcj02|bd09`): the GeoJSON 2008 "
                    'member `{"type": "name", "properties": {"name": <WKT>}}` that GDAL reads; '
                    "the `Content-Crs` header says the same"
                }
            ),
            **members,
        },
    )


CellFeatureCollectionSchema = feature_collection_of(
    "Cell", CellGeometrySchema, CellPropertiesSchema
)
