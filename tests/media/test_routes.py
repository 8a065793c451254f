"""The photo endpoints over HTTP: upload (re-encoded, stripped, size- and pixel-limited), serving
to those who may see a photo, and the expiry of uploads never attached to a tip.

The re-encoding itself is tested in test_images.py; here the point is that what goes over the
wire and lands on disk and in the `media` table is what those tests promise.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import struct
import uuid
import zlib

import pytest
from PIL import Image
from sqlalchemy import func, select, text

from app.media import service as media_service
from app.media.models import Media
from app.storage import LocalStore, media_store
from tests.tips.conftest import JIANWAI, gps_exif, jpeg, tip_body, upload

PROBLEM = "application/problem+json"
HTML_PAYLOAD = b"<html><script>alert(1)</script></html>"


# -- helpers -------------------------------------------------------------------------------------


def submit(client, headers=None, **overrides):
    """POST a tip (as tests/tips/conftest.py's `submit` fixture does)."""
    headers = dict(headers or {})
    headers["Idempotency-Key"] = str(uuid.uuid4())
    return client.post("/api/v1/tips", json=tip_body(**overrides), headers=headers)


def stored_files(app) -> set[str]:
    """Every object of the media store; on the local backend, every file under MEDIA_ROOT
    (including temporary ones of interrupted writes)."""
    with app.app_context():
        store = media_store()
    if isinstance(store, LocalStore):
        root = store.root
        return {str(p) for p in root.rglob("*") if p.is_file()} if root.exists() else set()
    return {info.key for info in store.list()}


def media_count(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Media))


def get_media(session, media_id) -> Media | None:
    session.expire_all()
    return session.get(Media, uuid.UUID(str(media_id)))


def noisy_jpeg(width: int, height: int, quality: int = 95) -> bytes:
    """Random pixels, no chroma subsampling: JPEG cannot compress them (about 2.4 bytes per
    pixel), so the file is large for its pixel count."""
    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A well-formed PNG whose IHDR declares width×height but that holds almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def encoded(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def assert_problem(response, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.get_data()[:500])
    assert response.headers["Content-Type"] == PROBLEM
    assert response.json["status"] == status


def assert_rejected_and_nothing_stored(app, session, post, status: int):
    """Run `post()`; it must answer `status` as a problem and leave no row and no file."""
    rows, files = media_count(session), stored_files(app)
    response = post()
    assert_problem(response, status)
    assert media_count(session) == rows
    assert stored_files(app) == files
    return response


def assert_served_jpeg(response) -> bytes:
    assert response.status_code == 200, response.get_data()[:500]
    assert response.mimetype == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"  # may show people; views audited
    data = response.get_data()
    assert data[:3] == b"\xff\xd8\xff" and data.endswith(b"\xff\xd9")
    return data


# -- upload --------------------------------------------------------------------------------------


def test_upload_is_stored_re_encoded_without_metadata_and_served_to_its_uploader(
    app, client, session, create_user, token_for
):
    volunteer = create_user()
    headers = token_for(volunteer)
    original = jpeg(800, 600, exif=gps_exif())
    # The input does carry what must not survive.
    assert b"SnoopCam" in original and b"Exif\x00\x00" in original
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)
    before = dt.datetime.now(dt.UTC)

    response = upload(client, original, headers=headers)

    assert response.status_code == 201, response.json
    body = response.json
    assert set(body) >= {"id", "sha256", "width", "height"}
    assert (body["width"], body["height"]) == (800, 600)
    media = get_media(session, body["id"])
    assert media is not None
    assert media.owner_id == volunteer.id and media.tip_id is None
    assert media.sha256 == body["sha256"] and media.content_type == "image/jpeg"
    hours = app.config["UNATTACHED_MEDIA_HOURS"]
    assert media.expires_at is not None
    assert (
        before + dt.timedelta(hours=hours) - dt.timedelta(minutes=1)
        <= media.expires_at
        <= dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)
    )
    store = media_store()
    assert store.exists(media.storage_key) and store.exists(media.thumbnail_key)
    assert media.byte_size == len(store.get(media.storage_key))

    photo = client.get(f"/api/v1/media/{body['id']}", headers=headers)
    data = assert_served_jpeg(photo)
    assert hashlib.sha256(data).hexdigest() == body["sha256"]
    assert data == store.get(media.storage_key)
    assert data != original
    assert b"SnoopCam" not in data and b"Model-X1" not in data
    assert b"Exif\x00\x00" not in data
    served = Image.open(io.BytesIO(data))
    assert served.format == "JPEG" and served.size == (800, 600)
    assert len(served.getexif()) == 0

    thumb = client.get(f"/api/v1/media/{body['id']}/thumbnail", headers=headers)
    thumb_data = assert_served_jpeg(thumb)
    small = Image.open(io.BytesIO(thumb_data))
    assert small.format == "JPEG" and max(small.size) == 320
    assert small.width < served.width and small.height < served.height
    assert len(thumb_data) < len(data)
    assert b"SnoopCam" not in thumb_data and b"Exif\x00\x00" not in thumb_data


@pytest.mark.parametrize(
    "polyglot",
    [
        pytest.param(jpeg(120, 90) + HTML_PAYLOAD, id="after-eoi"),
        pytest.param(
            encoded(Image.new("RGB", (120, 90), (10, 120, 200)), "JPEG", comment=HTML_PAYLOAD),
            id="in-comment-segment",
        ),
    ],
)
def test_jpeg_html_polyglots_are_served_without_their_payload(
    client, create_user, token_for, polyglot
):
    assert b"<script" in polyglot
    assert Image.open(io.BytesIO(polyglot)).format == "JPEG"
    headers = token_for(create_user())

    response = upload(client, polyglot, headers=headers)

    assert response.status_code == 201, response.json
    for path in ("", "/thumbnail"):
        served = client.get(f"/api/v1/media/{response.json['id']}{path}", headers=headers)
        data = assert_served_jpeg(served)
        assert b"<script" not in data.lower() and b"<html" not in data.lower()
        assert "sandbox" in served.headers["Content-Security-Policy"]


def test_decompression_bomb_is_413_and_stores_nothing(app, client, session):
    bomb = png_header_only(50_000, 50_000)
    assert len(bomb) < 2_000

    response = assert_rejected_and_nothing_stored(
        app, session, lambda: upload(client, bomb, filename="bomb.png"), 413
    )
    assert "pixels" in response.json["detail"]


def test_upload_over_media_max_bytes_is_413_and_stores_nothing(database_url, connection):
    from tests.conftest import make_app

    small_app = make_app(database_url, MEDIA_MAX_BYTES=50_000)
    small_client = small_app.test_client()
    with small_app.app_context():
        from app.extensions import db

        session = db.session
        big = noisy_jpeg(220, 180)
        assert 80_000 < len(big) < 200_000, len(big)

        assert_rejected_and_nothing_stored(
            small_app, session, lambda: upload(small_client, big), 413
        )
        # Under the limit, the same app accepts a photo: the 413 was about the size.
        fits = jpeg(64, 48)
        assert len(fits) < 50_000
        accepted = upload(small_client, fits)
        assert accepted.status_code == 201, accepted.json


def test_upload_may_exceed_the_general_body_limit(app, client, session):
    big = noisy_jpeg(800, 800)
    assert app.config["MAX_CONTENT_LENGTH"] < len(big) < app.config["MEDIA_MAX_BYTES"], len(big)

    response = upload(client, big)

    assert response.status_code == 201, response.get_data()[:500]
    assert get_media(session, response.json["id"]) is not None


def test_the_raised_limit_is_only_for_uploads(app, client):
    """Other endpoints keep MAX_CONTENT_LENGTH: a body as large as a big photo is a 413."""
    size = app.config["MAX_CONTENT_LENGTH"] + 500_000
    response = client.post(
        "/api/v1/tips",
        data=b"x" * size,
        headers={"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())},
    )
    assert_problem(response, 413)


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        pytest.param(b"<html><body><script>alert(1)</script></body></html>", "x.html", id="html"),
        pytest.param(b"just some text, not a picture\n" * 10, "photo.jpg", id="text-as-jpg"),
        pytest.param(encoded(Image.new("RGB", (40, 30), (0, 200, 0)), "GIF"), "x.gif", id="gif"),
        pytest.param(encoded(Image.new("RGB", (40, 30), (0, 200, 0)), "BMP"), "x.bmp", id="bmp"),
        pytest.param(jpeg(64, 48)[:200], "cut.jpg", id="truncated-jpeg"),
        pytest.param(b"", "empty.jpg", id="empty"),
    ],
)
def test_non_images_are_422_and_store_nothing(app, client, session, data, filename):
    response = assert_rejected_and_nothing_stored(
        app, session, lambda: upload(client, data, filename=filename), 422
    )
    assert response.json["detail"]


def test_missing_file_field_is_422(app, client, session):
    response = assert_rejected_and_nothing_stored(
        app,
        session,
        lambda: client.post(
            "/api/v1/media",
            data={"photo": (io.BytesIO(jpeg()), "photo.jpg")},  # the wrong field name
            content_type="multipart/form-data",
        ),
        422,
    )
    assert "/file" in [e["pointer"] for e in response.json["errors"]]


def test_json_body_instead_of_multipart_is_422(app, client, session):
    """The JSON body is never read: there is no `file` part, so it is the same 422."""
    response = assert_rejected_and_nothing_stored(
        app,
        session,
        lambda: client.post("/api/v1/media", json={"file": jpeg().hex()}),
        422,
    )
    assert "/file" in [e["pointer"] for e in response.json["errors"]]


def test_heic_upload_is_served_as_jpeg(client, create_user, token_for):
    import pillow_heif

    pillow_heif.register_heif_opener()
    original = encoded(Image.new("RGB", (96, 64), (30, 160, 90)), "HEIF")
    assert original[4:12] in (b"ftypheic", b"ftypmif1", b"ftypheix", b"ftypmsf1")
    headers = token_for(create_user())

    response = upload(client, original, headers=headers, filename="IMG_0001.HEIC")

    assert response.status_code == 201, response.json
    assert (response.json["width"], response.json["height"]) == (96, 64)
    data = assert_served_jpeg(client.get(f"/api/v1/media/{response.json['id']}", headers=headers))
    served = Image.open(io.BytesIO(data))
    assert served.format == "JPEG" and served.size == (96, 64)
    assert hashlib.sha256(data).hexdigest() == response.json["sha256"]


# -- who may see a photo -------------------------------------------------------------------------


def _status(client, media_id, headers) -> tuple[int, int]:
    full = client.get(f"/api/v1/media/{media_id}", headers=headers)
    thumb = client.get(f"/api/v1/media/{media_id}/thumbnail", headers=headers)
    for response in (full, thumb):
        if response.status_code >= 400:
            assert response.headers["Content-Type"] == PROBLEM
    return full.status_code, thumb.status_code


def test_photo_of_a_named_tip_is_seen_by_its_reporter_and_the_area_staff_only(
    client, session, create_user, token_for
):
    reporter, other = create_user(), create_user()
    photo = upload(client, jpeg(exif=gps_exif()), headers=token_for(reporter)).json["id"]
    tip = submit(client, headers=token_for(reporter), at=JIANWAI, media_ids=[photo])
    assert tip.status_code == 201, tip.json
    media = get_media(session, photo)
    assert str(media.tip_id) == tip.json["id"] and media.owner_id == reporter.id
    assert media.expires_at is None

    staff_here = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    admin_here = create_user(roles=["community_admin"], jurisdiction=["110105001000"])
    staff_next_door = create_user(roles=["grid_staff"], jurisdiction=["110105001025"])
    liaison = create_user(roles=["police_liaison"], jurisdiction=["110105001000"])

    assert _status(client, photo, token_for(reporter)) == (200, 200)
    assert _status(client, photo, token_for(staff_here)) == (200, 200)
    assert _status(client, photo, token_for(admin_here)) == (200, 200)
    assert _status(client, photo, token_for(other)) == (404, 404)
    assert _status(client, photo, token_for(staff_next_door)) == (404, 404)
    # Police liaisons see tips only through clue batches, never by the photo's URL.
    assert _status(client, photo, token_for(liaison)) == (404, 404)
    assert _status(client, photo, {}) == (401, 401)
    assert _status(client, uuid.uuid4(), token_for(staff_here)) == (404, 404)


def test_unattached_upload_is_seen_by_its_uploader_only(client, create_user, token_for):
    uploader = create_user()
    photo = upload(client, jpeg(), headers=token_for(uploader)).json["id"]

    assert _status(client, photo, token_for(uploader)) == (200, 200)
    assert _status(client, photo, token_for(create_user())) == (404, 404)
    assert _status(client, photo, token_for("grid_staff")) == (404, 404)


def test_anonymous_photo_belongs_to_no_one_and_area_staff_see_it(
    client, session, create_user, token_for
):
    response = upload(client, jpeg(exif=gps_exif()))
    assert response.status_code == 201, response.json
    photo = response.json["id"]
    assert get_media(session, photo).owner_id is None
    # Unattached and ownerless: nobody can fetch it by its id.
    assert _status(client, photo, token_for("grid_staff")) == (404, 404)

    tip = submit(client, at=JIANWAI, media_ids=[photo])
    assert tip.status_code == 201, tip.json
    media = get_media(session, photo)
    assert str(media.tip_id) == tip.json["id"] and media.owner_id is None

    staff_here = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    staff_next_door = create_user(roles=["grid_staff"], jurisdiction=["110105001025"])
    assert _status(client, photo, token_for(staff_here)) == (200, 200)
    assert _status(client, photo, token_for(staff_next_door)) == (404, 404)
    assert _status(client, photo, token_for(create_user())) == (404, 404)
    assert _status(client, photo, {}) == (401, 401)


def test_photo_of_an_anonymous_tip_sent_with_a_token_no_longer_names_its_uploader(
    client, session, create_user, token_for
):
    uploader = create_user()
    photo = upload(client, jpeg(), headers=token_for(uploader)).json["id"]
    tip = submit(client, headers=token_for(uploader), anonymous=True, media_ids=[photo])
    assert tip.status_code == 201, tip.json
    assert get_media(session, photo).owner_id is None
    assert _status(client, photo, token_for(uploader)) == (404, 404)
    staff_here = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    assert _status(client, photo, token_for(staff_here)) == (200, 200)


# -- expiry --------------------------------------------------------------------------------------


def _expire(session, media_id, hours_ago: int = 1) -> None:
    session.execute(
        text("UPDATE media SET expires_at = now() - make_interval(hours => :h) WHERE id = :id"),
        {"h": hours_ago, "id": uuid.UUID(str(media_id))},
    )
    session.commit()


def test_expired_uploads_and_their_files_are_deleted_attached_ones_kept(
    app, client, session, create_user, token_for
):
    headers = token_for(create_user())
    expired_id = upload(client, jpeg(), headers=headers).json["id"]
    fresh_id = upload(client, jpeg(), headers=headers).json["id"]
    attached_id = upload(client, jpeg(), headers=headers).json["id"]
    assert submit(client, headers=headers, media_ids=[attached_id]).status_code == 201
    _expire(session, expired_id)

    store = media_store()
    rows = {i: get_media(session, i) for i in (expired_id, fresh_id, attached_id)}
    files = {i: (m.storage_key, m.thumbnail_key) for i, m in rows.items()}
    assert all(store.exists(k) for pair in files.values() for k in pair)
    assert rows[attached_id].expires_at is None and rows[attached_id].tip_id is not None

    deleted = media_service.delete_expired(session, dt.datetime.now(dt.UTC))
    session.commit()

    assert deleted >= 1
    assert get_media(session, expired_id) is None
    assert not any(store.exists(k) for k in files[expired_id])
    for kept in (fresh_id, attached_id):
        assert get_media(session, kept) is not None
        assert all(store.exists(k) for k in files[kept])
    assert _status(client, expired_id, headers) == (404, 404)
    assert _status(client, attached_id, headers) == (200, 200)

    # Much later, the never-attached one goes too; the attached one never does.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    media_service.delete_expired(session, later)
    session.commit()
    assert get_media(session, fresh_id) is None
    assert not any(store.exists(k) for k in files[fresh_id])
    assert get_media(session, attached_id) is not None
    assert all(store.exists(k) for k in files[attached_id])


def test_upload_past_its_expiry_cannot_be_attached(client, session, create_user, token_for):
    volunteer = create_user()
    headers = token_for(volunteer)
    photo = upload(client, jpeg(), headers=headers).json["id"]
    _expire(session, photo)
    tips_before = session.scalar(text("SELECT count(*) FROM tips"))

    response = submit(client, headers=headers, media_ids=[photo])

    assert_problem(response, 422)
    assert [e["pointer"] for e in response.json["errors"]] == ["/media_ids/0"]
    assert session.scalar(text("SELECT count(*) FROM tips")) == tips_before
    assert get_media(session, photo).tip_id is None


def test_a_form_part_without_a_name_is_422_and_stores_nothing(app, client, session):
    """Found by schemathesis in some runs only: a multipart part whose Content-Disposition
    names no field reaches the form as the key None, and checking it for refused text was a
    500 (TypeError)."""
    boundary = "b4f1c0d2e3"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="a"\r\n\r\n{{}}\r\n'
        f"--{boundary}\r\nContent-Disposition: form-data\r\n\r\n{{}}\r\n--{boundary}--\r\n"
    ).encode()
    response = assert_rejected_and_nothing_stored(
        app,
        session,
        lambda: client.post(
            "/api/v1/media",
            data=body,
            content_type=f"multipart/form-data; boundary={boundary}",
        ),
        422,
    )
    assert response.mimetype == "application/problem+json"


def test_form_fields_with_odd_names_are_422_and_store_nothing(app, client, session):
    """Found by schemathesis: parts named "" (twice) beside a file that is no image."""
    boundary = "9d45820c68207139d9530cb4f4cf56cd"
    parts = [
        ("", b"[]"),
        ("", b'[true, "\\u00c5"]'),
        (
            "ÁQô".encode() + b"\xf1\x90\x82\xb1\xf1\x8b\xae\xb3\xc2\x84x\xf0\x94\x8f\xac"
            b"\xc2\x80\xf2\x84\x8d\x8a\x04T\xf2\x97\xb9\x89",
            b'{"a": 1}',
        ),
        (b"\xf1\x94\xa8\x9e|v\xf3\x85\x8e\xb1%0A\xc3\xafM", b"{}"),
    ]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="'.encode()
        + (name if isinstance(name, bytes) else name.encode())
        + b'"\r\n\r\n'
        + value
        + b"\r\n"
        for name, value in parts
    )
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="file"\r\n\r\n'
        f"bz\r\n--{boundary}--\r\n"
    ).encode()
    response = assert_rejected_and_nothing_stored(
        app,
        session,
        lambda: client.post(
            "/api/v1/media",
            data=body,
            content_type=f"multipart/form-data; boundary={boundary}",
        ),
        422,
    )
    assert response.mimetype == "application/problem+json"
