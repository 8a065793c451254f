"""Helpers for the tips tests: photos made with Pillow, and places in the demo data."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

# Inside community 110105001024 (Jianwai), grid cell 110105001024-G004, in WGS-84.
JIANWAI = (116.45536, 39.90968)
# Inside community 110105001025, outside 110105001024.
NEIGHBOUR = (116.46406, 39.91004)


def jpeg(width: int = 64, height: int = 48, exif: Image.Exif | None = None) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (width, height), (200, 30, 30))
    image.save(buffer, format="JPEG", exif=exif or Image.Exif())
    return buffer.getvalue()


def gps_exif(lat: float = 39.90968, lon: float = 116.45536) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SnoopCam"  # Make
    exif[0x0110] = "Model-X1"  # Model
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (39.0, 54.0, 34.85), 3: "E", 4: (116.0, 27.0, 19.3)})
    return exif


def upload(client, data: bytes, headers=None, filename: str = "photo.jpg"):
    return client.post(
        "/api/v1/media",
        data={"file": (io.BytesIO(data), filename)},
        headers=headers or {},
        content_type="multipart/form-data",
    )


def tip_body(**overrides):
    lon, lat = overrides.pop("at", JIANWAI)
    body = {
        "category": "theft",
        "description": "两个人在撬电动车的锁",
        "location": {"lon": lon, "lat": lat, "coord_system": "wgs84", "accuracy_m": 8},
    }
    body.update(overrides)
    return body


@pytest.fixture
def submit(client):
    """POST a tip: submit(headers=..., **body overrides) -> response."""

    def make(headers=None, key=None, **overrides):
        headers = dict(headers or {})
        headers["Idempotency-Key"] = key or str(uuid.uuid4())
        return client.post("/api/v1/tips", json=tip_body(**overrides), headers=headers)

    return make


@pytest.fixture
def staff(create_user, token_for):
    """A grid_staff of community 110105001024 and their headers."""
    user = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    return user, token_for(user)
