"""Re-encode uploaded photos so that nothing but their pixels ever leaves the server.

Tipsters' photos routinely carry GPS coordinates, device make/model and serial numbers, capture
times and editing history in EXIF, XMP, ICC profiles, comments and vendor segments. Stripping
those one by one is a losing game, so instead every upload is decoded, its pixels copied into a
brand-new image object and that one encoded as JPEG: metadata cannot survive because nothing but
pixels is ever carried across. The same step defeats polyglots (a JPEG that is also HTML or a
script, by payloads in comments or after the end-of-image marker): the bytes we store and serve
are always ones our encoder wrote.

Decoding untrusted images is itself risky, so the format is restricted to an allow-list and the
pixel count is checked from the header before any pixel is decoded (decompression bombs: a few
kilobytes of PNG can declare gigabytes of pixels).
"""

from __future__ import annotations

import hashlib
import math
import struct
import warnings
from dataclasses import dataclass
from io import BytesIO

import pillow_heif
from PIL import Image, ImageOps

from app.core.i18n import _

pillow_heif.register_heif_opener()

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
CONTENT_TYPE = "image/jpeg"

# Malformed input surfaces from Pillow's plugins through many exception types, not only OSError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error)


class ImageRejected(Exception):
    """An upload that is not accepted; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class ProcessedImage:
    """A metadata-free JPEG of an upload and its thumbnail; width/height/sha256 are of `content`."""

    content: bytes
    thumbnail: bytes
    content_type: str
    width: int
    height: int
    sha256: str
    source_format: str


def process_image(
    data: bytes,
    *,
    max_pixels: int = 40_000_000,
    max_side: int = 2560,
    thumb_side: int = 320,
    quality: int = 85,
) -> ProcessedImage:
    """Validate an uploaded photo and re-encode it, and a thumbnail, from its pixels alone.

    Raises ImageRejected: 422 for anything that is not a readable JPEG, PNG, WebP or HEIC/HEIF
    image, 413 for images with more than `max_pixels` pixels. Multi-frame images (animated WebP,
    HEIF sequences) keep only the frame Pillow opens on (the first one, or HEIF's primary image).
    """
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; a bomb is never acceptable.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(BytesIO(data), formats=ALLOWED_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels(max_pixels) from None
        except _DECODE_ERRORS:
            raise ImageRejected(
                422, _("The file is not a JPEG, PNG, WebP or HEIC image.")
            ) from None
        with image:
            source_format = image.format or "unknown"
            # Image.open has only read the header: refuse bombs before decoding a single pixel.
            if image.width * image.height > max_pixels:
                raise _too_many_pixels(max_pixels)
            try:
                pixels = _decode_rgb(image, max_side)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise _too_many_pixels(max_pixels) from None
            except _DECODE_ERRORS:
                raise ImageRejected(422, _("The file is not a readable image.")) from None

    content = _encode_jpeg(pixels, quality)
    thumb = pixels.copy()
    thumb.thumbnail((thumb_side, thumb_side), Image.Resampling.LANCZOS)
    return ProcessedImage(
        content=content,
        thumbnail=_encode_jpeg(thumb, quality),
        content_type=CONTENT_TYPE,
        width=pixels.width,
        height=pixels.height,
        sha256=hashlib.sha256(content).hexdigest(),
        source_format=source_format,
    )


def _too_many_pixels(max_pixels: int) -> ImageRejected:
    return ImageRejected(
        413,
        _(
            "The image is too large: at most %(max_pixels)s pixels are accepted.",
            max_pixels=format(max_pixels, ","),
        ),
    )


def _decode_rgb(image: Image.Image, max_side: int) -> Image.Image:
    """Decode, orient upright, flatten onto white and downscale; returns a metadata-free copy."""
    scale = min(1.0, max_side / max(image.size))
    target = (max(1, math.ceil(image.width * scale)), max(1, math.ceil(image.height * scale)))
    # JPEG only: let libjpeg decode at 1/2..1/8 scale (never below target) to save memory and time.
    image.draft(None, target)
    image.load()
    if max(image.size) > max_side and image.mode in ("RGB", "RGBA", "L", "LA"):
        # Shrink first, in place (EXIF stays for the orientation below): the copies made by
        # transposing and converting are then of the small image, not of up to 40 MP.
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    upright = ImageOps.exif_transpose(image)
    if upright.mode.startswith("I;16"):  # 16-bit grey PNG: convert("RGB") would clip it to white
        upright = upright.convert("I").point(lambda v: v / 256).convert("L")
    if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
    else:
        flat = upright.convert("RGB")
    if max(flat.size) > max_side:
        ratio = max_side / max(flat.size)
        size = (max(1, round(flat.width * ratio)), max(1, round(flat.height * ratio)))
        flat = flat.resize(size, Image.Resampling.LANCZOS)
    # convert()/resize() copy `info` (EXIF, XMP, ICC, comments...) along; a fresh image has none.
    return Image.frombytes("RGB", flat.size, flat.tobytes())


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """Encode without exif/icc_profile/comment arguments, so only pixels are written."""
    out = BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True, progressive=True)
    return out.getvalue()
