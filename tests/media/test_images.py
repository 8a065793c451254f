"""process_image: metadata never survives, bombs and foreign formats are refused.

Every test image is generated here with Pillow, so the fixtures visibly carry what the tests
claim they carry (each privacy test first checks that its input does contain the metadata).
"""

from __future__ import annotations

import hashlib
import struct
import time
import zlib
from io import BytesIO

import pytest
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

from app.media.images import ALLOWED_FORMATS, ImageRejected, ProcessedImage, process_image

MAKE = "QunfangTestMake"
MODEL = "QunfangTestModel"
COMMENT = "QunfangSecretComment"
XMP_NS = b"http://ns.adobe.com/xap/1.0/"
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:xmp="' + XMP_NS + b'" xmp:CreatorTool="QunfangXmpTool"/></rdf:RDF></x:xmpmeta>'
)
# Seconds of latitude and longitude, as the big-endian TIFF rationals Image.Exif writes.
GPS_LAT_SECONDS = struct.pack(">LL", 12347, 1000)
GPS_LON_SECONDS = struct.pack(">LL", 54321, 1000)
HTML_PAYLOAD = b"<html><body><script>alert(document.cookie)</script></body></html>"


def gradient(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """A non-flat picture, so encoders produce realistic output."""
    image = Image.linear_gradient("L").resize(size)
    rgb = Image.merge("RGB", (image, image.rotate(90).resize(size), Image.new("L", size, 90)))
    return rgb.convert(mode) if mode != "RGB" else rgb


def tagged_exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = MAKE
    exif[ExifTags.Base.Model] = MODEL
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.347)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 54.321)
    return exif


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = BytesIO()
    image.save(buf, format=fmt, **params)
    return buf.getvalue()


def with_metadata(fmt: str) -> bytes:
    """A photo in `fmt` carrying GPS EXIF, make/model, an ICC profile, XMP (and a comment)."""
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    params: dict[str, object] = {"exif": tagged_exif().tobytes(), "icc_profile": icc}
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        info.add_text("Comment", COMMENT)
        params["pnginfo"] = info
    else:
        params["xmp"] = XMP
    if fmt == "JPEG":
        params["comment"] = COMMENT
    return encode(gradient((120, 80)), fmt, **params)


def jpeg_markers(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, first bytes of payload) for every segment up to start-of-scan."""
    assert data[:2] == b"\xff\xd8"
    markers, pos = [], 2
    while True:
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        markers.append((marker, data[pos + 4 : pos + 9]))
        if marker == 0xDA:  # SOS: entropy-coded data follows
            return markers
        pos += 2 + length


def assert_metadata_free(data: bytes) -> None:
    image = Image.open(BytesIO(data))
    assert image.format == "JPEG"
    assert image.mode == "RGB"
    assert not image.getexif()
    assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    for key in ("icc_profile", "exif", "xmp", "comment", "photoshop", "adobe"):
        assert key not in image.info
    for needle in (
        b"Exif\x00\x00",
        XMP_NS,
        b"xmpmeta",
        MAKE.encode(),
        MODEL.encode(),
        COMMENT.encode(),
        b"ICC_PROFILE",
        GPS_LAT_SECONDS,
        GPS_LON_SECONDS,
    ):
        assert needle not in data
    # Only the JFIF APP0 segment, no other APPn and no COM: the encoder wrote nothing but pixels.
    for marker, payload in jpeg_markers(data):
        assert not (0xE1 <= marker <= 0xEF), f"APP{marker - 0xE0} segment present"
        assert marker != 0xFE, "COM segment present"
        if marker == 0xE0:
            assert payload == b"JFIF\x00"


def test_allowed_formats() -> None:
    assert ALLOWED_FORMATS == ("JPEG", "PNG", "WEBP", "HEIF")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_gps_exif_icc_xmp_and_comments_are_removed(fmt: str) -> None:
    data = with_metadata(fmt)
    source = Image.open(BytesIO(data))
    assert source.format == fmt
    assert source.getexif()[ExifTags.Base.Make] == MAKE  # the input really is tagged...
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"
    assert "icc_profile" in source.info
    assert XMP_NS in data
    if fmt != "HEIF":  # ...including the raw GPS rationals (HEIF may compress its boxes)
        assert GPS_LAT_SECONDS in data and GPS_LON_SECONDS in data

    result = process_image(data)

    assert result.source_format == fmt
    assert_metadata_free(result.content)
    assert_metadata_free(result.thumbnail)


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (100, 50), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 50, 50))  # left half blue, right half red
    result = process_image(encode(image, "JPEG", exif=tagged_exif(orientation=6), quality=95))

    assert (result.width, result.height) == (50, 100)
    out = Image.open(BytesIO(result.content))
    assert out.size == (50, 100)
    assert not out.getexif()  # no stale orientation tag that would rotate it a second time
    # Orientation 6 means "rotate 90° clockwise to display": the blue left half ends up on top.
    top, bottom = out.getpixel((25, 10)), out.getpixel((25, 90))
    assert top[2] > 200 and top[0] < 60
    assert bottom[0] > 200 and bottom[2] < 60


def jpeg_bytes() -> bytes:
    return encode(gradient((80, 60)), "JPEG")


@pytest.mark.parametrize(
    "polyglot",
    [
        pytest.param(jpeg_bytes() + HTML_PAYLOAD, id="after-eoi"),
        pytest.param(
            encode(gradient((80, 60)), "JPEG", comment=HTML_PAYLOAD), id="in-comment-segment"
        ),
    ],
)
def test_html_polyglots_are_neutralised(polyglot: bytes) -> None:
    assert b"<script" in polyglot and b"<html" in polyglot
    assert Image.open(BytesIO(polyglot)).format == "JPEG"  # Pillow accepts it as a JPEG

    result = process_image(polyglot)

    for data in (result.content, result.thumbnail):
        assert b"<script" not in data.lower()
        assert b"<html" not in data.lower()
        assert data != polyglot
        assert data.endswith(b"\xff\xd9")


def png_header_only(width: int, height: int) -> bytes:
    """A well-formed PNG whose IHDR declares width×height but that holds almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("width", "height", "kwargs"),
    [
        pytest.param(50_000, 50_000, {}, id="beyond-pillow-limit"),
        # Under Pillow's own limit (~89 Mpx): only process_image's header check stops it.
        pytest.param(8_000, 8_000, {}, id="over-max-pixels"),
        pytest.param(100, 100, {"max_pixels": 9_999}, id="custom-max-pixels"),
        # Over Pillow's warning threshold but under max_pixels: the warning must become a 413.
        pytest.param(10_000, 10_000, {"max_pixels": 150_000_000}, id="pillow-warning"),
    ],
)
def test_decompression_bombs_are_refused_from_the_header(
    width: int, height: int, kwargs: dict[str, int]
) -> None:
    data = png_header_only(width, height)
    assert len(data) < 200
    started = time.perf_counter()
    with pytest.raises(ImageRejected) as excinfo:
        process_image(data, **kwargs)
    assert time.perf_counter() - started < 0.5
    assert excinfo.value.status == 413
    assert "too large" in excinfo.value.detail


def test_image_at_the_pixel_limit_is_accepted() -> None:
    data = encode(gradient((100, 100)), "PNG")
    assert process_image(data, max_pixels=10_000).width == 100


def not_allowed_samples() -> list[object]:
    image = gradient((40, 30))
    return [
        pytest.param(encode(image.convert("P"), "GIF"), id="gif"),
        pytest.param(encode(image, "BMP"), id="bmp"),
        pytest.param(encode(image, "TIFF"), id="tiff"),
        pytest.param(encode(image, "AVIF"), id="avif"),  # Pillow decodes it; not on the list
        pytest.param(encode(image.convert("RGBA"), "ICO"), id="ico"),
        pytest.param(b"<!DOCTYPE html>" + HTML_PAYLOAD, id="html"),
        pytest.param(b'<svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>', id="svg"),
        pytest.param(b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n", id="pdf"),
        pytest.param(b"just some text\n", id="text"),
        pytest.param(b"", id="empty"),
    ]


@pytest.mark.parametrize("data", not_allowed_samples())
def test_formats_outside_the_allow_list_are_refused(data: bytes) -> None:
    with pytest.raises(ImageRejected) as excinfo:
        process_image(data)
    assert excinfo.value.status == 422
    assert excinfo.value.detail == "The file is not a JPEG, PNG, WebP or HEIC image."
    assert str(excinfo.value) == excinfo.value.detail


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(truncated(encode(gradient((400, 300)), "JPEG")), id="truncated-jpeg"),
        pytest.param(truncated(encode(gradient((400, 300)), "PNG")), id="truncated-png"),
        pytest.param(png_header_only(64, 64), id="png-missing-pixel-data"),
    ],
)
def test_unreadable_images_are_refused(data: bytes) -> None:
    with pytest.raises(ImageRejected) as excinfo:
        process_image(data)
    assert excinfo.value.status == 422
    assert excinfo.value.detail == "The file is not a readable image."


def test_png_alpha_is_flattened_onto_white() -> None:
    image = Image.new("RGBA", (60, 40), (0, 0, 0, 0))  # transparent black
    image.paste((255, 0, 0, 255), (30, 0, 60, 40))  # opaque red right half
    result = process_image(encode(image, "PNG"))

    out = Image.open(BytesIO(result.content))
    assert (out.format, out.mode, out.size) == ("JPEG", "RGB", (60, 40))
    assert min(out.getpixel((5, 20))) > 245  # white, not black
    red = out.getpixel((55, 20))
    assert red[0] > 240 and red[1] < 20 and red[2] < 20
    assert result.source_format == "PNG"


def test_palette_transparency_is_flattened_onto_white() -> None:
    image = Image.new("P", (20, 20), 0)
    image.putpalette([0, 0, 0, 255, 0, 0])
    image.info["transparency"] = 0
    result = process_image(encode(image, "PNG", transparency=0))
    assert min(Image.open(BytesIO(result.content)).getpixel((10, 10))) > 245


@pytest.mark.parametrize(
    ("mode", "fmt", "colour", "grey"),
    [
        ("L", "PNG", 128, 128),
        ("CMYK", "JPEG", (0, 0, 0, 127), 128),
        ("I;16", "PNG", 128 * 256, 128),  # 16-bit grey: scaled down, not clipped to white
    ],
)
def test_other_pixel_modes_become_rgb(mode: str, fmt: str, colour: object, grey: int) -> None:
    result = process_image(encode(Image.new(mode, (50, 40), colour), fmt))  # type: ignore[arg-type]
    out = Image.open(BytesIO(result.content))
    assert out.mode == "RGB"
    assert all(abs(channel - grey) <= 3 for channel in out.getpixel((25, 20)))


@pytest.mark.parametrize("fmt", ["WEBP", "HEIF"])
def test_webp_and_heif_are_accepted(fmt: str) -> None:
    data = encode(Image.new("RGB", (90, 60), (0, 160, 0)), fmt)
    result = process_image(data)
    assert result.source_format == fmt
    assert (result.width, result.height) == (90, 60)
    r, g, b = Image.open(BytesIO(result.content)).getpixel((45, 30))
    assert g > 130 and r < 40 and b < 40


def test_large_images_are_downscaled() -> None:
    result = process_image(encode(gradient((5000, 3000)), "PNG"))

    assert isinstance(result, ProcessedImage)
    assert (result.width, result.height) == (2560, 1536)
    assert Image.open(BytesIO(result.content)).size == (2560, 1536)
    assert Image.open(BytesIO(result.thumbnail)).size == (320, 192)
    assert result.content_type == "image/jpeg"
    assert result.sha256 == hashlib.sha256(result.content).hexdigest()


def test_large_jpeg_is_downscaled_exactly_despite_reduced_decoding() -> None:
    result = process_image(encode(gradient((4000, 6000)), "JPEG"), max_side=1000, thumb_side=90)
    assert (result.width, result.height) == (667, 1000)
    assert Image.open(BytesIO(result.content)).size == (667, 1000)
    assert Image.open(BytesIO(result.thumbnail)).size == (60, 90)


def test_small_images_keep_their_size() -> None:
    result = process_image(encode(gradient((300, 200)), "PNG"))
    assert (result.width, result.height) == (300, 200)
    assert Image.open(BytesIO(result.thumbnail)).size == (300, 200)


def test_thumbnail_side_and_quality_are_honoured() -> None:
    data = encode(gradient((1000, 500)), "PNG")
    low, high = process_image(data, quality=20), process_image(data, quality=95)
    assert len(low.content) < len(high.content)
    assert Image.open(BytesIO(process_image(data, thumb_side=100).thumbnail)).size == (100, 50)


def test_output_is_progressive_jpeg() -> None:
    out = Image.open(BytesIO(process_image(encode(gradient((64, 64)), "PNG")).content))
    assert out.info.get("progressive") or out.info.get("progression")


@pytest.mark.parametrize("fmt", ["WEBP", "HEIF"])
def test_multi_frame_images_keep_the_first_frame(fmt: str) -> None:
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buf = BytesIO()
    frames[0].save(buf, format=fmt, save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(BytesIO(buf.getvalue())).n_frames == 2

    result = process_image(buf.getvalue())

    r, g, b = Image.open(BytesIO(result.content)).getpixel((20, 15))
    assert r > 200 and g < 50 and b < 50


def test_result_is_frozen() -> None:
    result = process_image(encode(gradient((10, 10)), "PNG"))
    with pytest.raises(AttributeError):
        result.width = 1  # type: ignore[misc]
