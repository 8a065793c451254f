"""Where a photo's bytes go in the media store (app/storage/): its keys."""

from __future__ import annotations

import uuid

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
