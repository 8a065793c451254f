"""Photo upload, and photos served only to those who may see them."""

from __future__ import annotations

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest.fields import Upload as UploadField
from marshmallow import Schema, fields

from app.core import audit
from app.core.auth import current_identity, current_user, optional_user
from app.core.blueprint import Blueprint
from app.core.errors import NotFound, problem
from app.core.i18n import _
from app.extensions import anonymous_bucket, db, limiter
from app.media import access, service
from app.media.images import ImageRejected
from app.media.models import Media
from app.storage import streamed

blp = Blueprint("media", __name__, url_prefix="/api/v1/media", description="Photos")


class UploadSchema(Schema):
    file = UploadField(required=True, metadata={"description": "JPEG, PNG, WebP or HEIC/HEIF"})


class NoFormFieldsSchema(Schema):
    """The upload takes no form fields besides `file`: anything else is a 422."""


class MediaUploadSchema(UploadSchema, NoFormFieldsSchema):
    """The multipart body, as documented: the file and nothing else."""


class MediaSchema(Schema):
    id = fields.UUID(required=True)
    sha256 = fields.String(required=True, metadata={"description": "of the stored re-encoding"})
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    content_type = fields.String()
    expires_at = fields.DateTime(allow_none=True, metadata={"description": "unless attached"})


def _upload_bucket() -> str:
    identity = current_identity()
    return f"user:{identity}" if identity else anonymous_bucket()


@blp.before_request
def _upload_limit() -> None:
    """Photos may be larger than other bodies (MAX_CONTENT_LENGTH); beyond this, a 413."""
    if request.endpoint == "media.Upload":
        request.max_content_length = current_app.config["MEDIA_MAX_BYTES"]


@blp.route("")
class Upload(MethodView):
    # Without a token (anonymous tips) the bucket is a keyed hash of the address, never the
    # address itself; with one, the account.
    decorators = (
        limiter.limit(lambda: current_app.config["MEDIA_RATE_LIMIT"], key_func=_upload_bucket),
    )

    @blp.public
    @blp.multipart_body(MediaUploadSchema)
    @blp.arguments(UploadSchema, location="files")
    @blp.arguments(NoFormFieldsSchema, location="form")
    @blp.response(201, MediaSchema)
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    def post(self, files, _form):
        """Upload a photo (multipart field `file`), to attach to a tip within the expiry time.

        The image is decoded (JPEG, PNG, WebP, HEIC/HEIF only; size and pixel limits), turned
        upright, and re-encoded from its pixels as JPEG: no EXIF (GPS, camera), XMP or ICC data
        survives, and nothing but the image reaches storage. Without a token (anonymous tips)
        the photo belongs to no account.
        """
        owner = optional_user()
        try:
            media = service.store_upload(
                db.session,
                owner,
                files["file"].read(),
                max_pixels=current_app.config["MEDIA_MAX_PIXELS"],
                unattached_hours=current_app.config["UNATTACHED_MEDIA_HOURS"],
            )
        except ImageRejected as exc:
            return problem(exc.status, detail=exc.detail)
        return media


def _visible(media_id, variant: str) -> Media:
    """The photo if the caller may see it (its uploader, or whom the rule of the tip or task it
    is attached to allows: app/media/access.py); reads through an attachment go on the audit
    trail."""
    media = service.get_media(db.session, media_id)
    user = current_user()
    if media.owner_id == user.id:
        return media
    granted = access.granted_through(db.session, user, media)
    if granted is None:
        raise NotFound(_("No such photo."))
    column, object_id = granted
    audit.record(
        db.session,
        "media.viewed",
        actor=user,
        object_type="media",
        object_ids=[media.id],
        details={column: str(object_id), "variant": variant},
    )
    return media


def _image(media: Media, variant: str) -> Response:
    # Photos may show people: no-store and nosniff, like every personal answer
    # (app/core/caching.py); each view of a tip's photo is audited, not served from a cache.
    response = streamed(service.open_variant(media, variant), media.content_type)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@blp.route("/<uuid:media_id>")
class Photo(MethodView):
    @blp.login_required
    @blp.response(200, description="The photo (image/jpeg)", content_type="image/jpeg")
    def get(self, media_id):
        """A photo: its uploader, the reporter of its tip, and staff of the tip's (or the
        completed task's) area."""
        return _image(_visible(media_id, "full"), "full")


@blp.route("/<uuid:media_id>/thumbnail")
class Thumbnail(MethodView):
    @blp.login_required
    @blp.response(200, description="The thumbnail (image/jpeg)", content_type="image/jpeg")
    def get(self, media_id):
        """A photo's thumbnail (longest side 320 px), for the same people as the photo."""
        return _image(_visible(media_id, "thumbnail"), "thumbnail")
