"""Photo keys: where a photo's objects go, and back from a key to its photo (the orphan sweep).

The stores themselves have their own suite, run against both backends (tests/storage/)."""

from __future__ import annotations

import uuid

import pytest

from app.media.storage import media_id_of, media_key
from app.storage import check_key

MEDIA_ID = uuid.UUID("3f2a9c1e-0b7d-4e1a-9c3b-5d6e7f8a9b0c")


def test_media_key() -> None:
    assert media_key(MEDIA_ID, "full") == f"3f/2a/{MEDIA_ID}-full.jpg"
    assert media_key(MEDIA_ID, "thumb") == "3f/2a/3f2a9c1e-0b7d-4e1a-9c3b-5d6e7f8a9b0c-thumb.jpg"
    with pytest.raises(ValueError):
        media_key(MEDIA_ID, "../full")


def test_media_keys_are_valid_storage_keys_and_name_their_photo() -> None:
    for variant in ("full", "thumb"):
        media_id = uuid.uuid4()
        key = media_key(media_id, variant)
        assert check_key(key) == key
        assert media_id_of(key) == media_id


@pytest.mark.parametrize(
    "key",
    [
        "personal/3f2a9c1e-0b7d-4e1a-9c3b-5d6e7f8a9b0c.zip",
        "3f/2a/3f2a9c1e-0b7d-4e1a-9c3b-5d6e7f8a9b0c-full.png",
        "3f/2a/3f2a9c1e-0b7d-4e1a-9c3b-5d6e7f8a9b0c-large.jpg",
        "00/00/3f2a9c1e-0b7d-4e1a-9c3b-5d6e7f8a9b0c-full.jpg",
        "3f2a9c1e-0b7d-4e1a-9c3b-5d6e7f8a9b0c-full.jpg",
        "3f/2a/not-a-uuid-full.jpg",
    ],
)
def test_keys_of_no_photo_name_none(key: str) -> None:
    assert media_id_of(key) is None
