"""Where a photo's bytes go in the media store (app/storage/): its keys, and which of them a
photo still points to (the orphan sweep's rule for the media store)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.media.models import Media
from app.storage import owners

VARIANTS = ("full", "thumb")


def media_key(media_id: uuid.UUID, variant: str) -> str:
    """`3f/2a/<uuid>-<variant>.jpg`: two fan-out levels keep local directories small."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown media variant {variant!r}")
    hex_id = media_id.hex
    return f"{hex_id[:2]}/{hex_id[2:4]}/{media_id}-{variant}.jpg"


def media_id_of(key: str) -> uuid.UUID | None:
    """The photo a key of `media_key` belongs to (None for anything else): what the orphan
    sweep looks up."""
    name = key.rsplit("/", 1)[-1]
    stem, _, variant = name.removesuffix(".jpg").rpartition("-")
    if variant not in VARIANTS or not name.endswith(".jpg"):
        return None
    try:
        media_id = uuid.UUID(stem)
    except ValueError:
        return None
    return media_id if media_key(media_id, variant) == key else None


def referenced_media(session: Session, keys: Sequence[str]) -> set[str]:
    """The photo keys whose row still exists (keys of no photo are not ours: kept)."""
    ids = {key: media_id_of(key) for key in keys}
    alive = set(
        session.scalars(select(Media.id).where(Media.id.in_({i for i in ids.values() if i})))
    )
    return {key for key, media_id in ids.items() if media_id is None or media_id in alive}


def register_stored_objects() -> None:
    """Every key of the media store is a photo's (app/storage/owners.py); create_app calls this."""
    owners.register("media", "", referenced_media)
