"""Photos: store an upload (re-encoded), attach uploads to a tip, serve them to whoever may see
them, and expire the ones never attached."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Sequence

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.core.errors import NotFound, field_error
from app.core.i18n import _
from app.media.images import ProcessedImage, process_image
from app.media.models import Media
from app.media.storage import media_key
from app.storage import ObjectStore, StoredObject, media_store


def storage() -> ObjectStore:
    """The configured media store (app/storage/: MEDIA_ROOT, or the S3 bucket's `media/`)."""
    return media_store()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def store_upload(
    session: Session, owner: User | None, data: bytes, *, max_pixels: int, unattached_hours: int
) -> Media:
    """Decode, re-encode and store an upload (of at most `max_pixels`, MEDIA_MAX_PIXELS, to be
    attached within `unattached_hours`, UNATTACHED_MEDIA_HOURS); raises images.ImageRejected
    for a bad one.

    Objects are written before the row: an upload that fails half-way removes what it wrote,
    and a transaction that fails after it leaves objects no row points to (and no metadata),
    which the orphan sweep removes (app/storage/sweep.py).
    """
    image: ProcessedImage = process_image(data, max_pixels=max_pixels)
    media = Media(
        id=uuid.uuid4(),
        owner_id=owner.id if owner else None,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        byte_size=len(image.content),
        sha256=image.sha256,
        expires_at=_now() + dt.timedelta(hours=unattached_hours),
    )
    media.storage_key = media_key(media.id, "full")
    media.thumbnail_key = media_key(media.id, "thumb")
    store = storage()
    try:
        store.put(media.storage_key, image.content)
        store.put(media.thumbnail_key, image.thumbnail)
    except BaseException:
        for key in (media.storage_key, media.thumbnail_key):
            with contextlib.suppress(Exception):  # the sweep takes what this cannot
                store.delete(key)
        raise
    session.add(media)
    session.flush()
    return media


def attach(
    session: Session,
    media_ids: Sequence[uuid.UUID],
    tip_id: uuid.UUID,
    *,
    owner: User | None,  # pragma: no mutate (an annotation: never evaluated)
    anonymous: bool,
    pointer: str = "/media_ids",
) -> list[Media]:
    """Attach unattached, unexpired uploads of `owner` (or uploads made without a token) to a
    tip. For an anonymous tip the owner link is dropped, so the photos cannot name the sender."""
    rows = _claim(session, media_ids, owner, pointer)
    for media in rows:
        media.tip_id = tip_id
        media.expires_at = None
        if anonymous:
            media.owner_id = None
    session.flush()
    return rows


def attach_to_task(
    session: Session,
    media_ids: Sequence[uuid.UUID],
    task_id: uuid.UUID,
    owner: User,
    pointer: str = "/media_ids",
) -> list[uuid.UUID]:
    """Attach `owner`'s uploads to their completion of a task: kept as the task's evidence (no
    longer expiring), seen by the uploader and the task's staff. Photos this volunteer attached
    to this task already (completing again) stay as they are."""
    if len(set(media_ids)) != len(media_ids):
        raise field_error(pointer, _("The same photo is listed twice."))
    already = set(
        session.scalars(
            select(Media.id).where(
                Media.id.in_(media_ids), Media.task_id == task_id, Media.owner_id == owner.id
            )
        )
    )
    fresh = [m for m in media_ids if m not in already]
    for media in _claim(session, fresh, owner, pointer, positions=media_ids, anonymous_ok=False):
        media.task_id = task_id
        media.expires_at = None
    session.flush()
    return list(media_ids)


def _claim(
    session: Session,
    media_ids: Sequence[uuid.UUID],
    owner: User | None,  # pragma: no mutate (an annotation: never evaluated)
    pointer: str,
    *,
    positions: Sequence[uuid.UUID] | None = None,  # pragma: no mutate (an annotation)
    anonymous_ok: bool = True,
) -> list[Media]:
    """The uploads `media_ids`, locked, each unattached, unexpired and `owner`'s (or, with
    `anonymous_ok`, made without a token); a 422 naming the first that is not (its index in
    `positions`, the list as the client sent it, when that differs)."""
    if not media_ids:
        return []
    if len(set(media_ids)) != len(media_ids):
        raise field_error(pointer, _("The same photo is listed twice."))
    rows = {
        m.id: m
        for m in session.scalars(
            select(Media).where(Media.id.in_(media_ids)).with_for_update()
        ).all()
    }
    owner_id = owner.id if owner else None
    owners = (None, owner_id) if anonymous_ok else (owner_id,)
    now = _now()
    sent = list(positions if positions is not None else media_ids)
    for media_id in media_ids:
        media = rows.get(media_id)
        usable = (
            media is not None
            and media.tip_id is None
            and media.task_id is None
            and media.expires_at is not None
            and media.expires_at > now
            and media.owner_id in owners
        )
        if not usable:
            raise field_error(
                f"{pointer}/{sent.index(media_id)}",
                _(
                    "No such photo: upload it first "
                    "(uploads can be used once, within %(hours)s hours).",
                    hours=current_app.config["UNATTACHED_MEDIA_HOURS"],
                ),
            )
    return [rows[m] for m in media_ids]


def get_media(session: Session, media_id: uuid.UUID) -> Media:
    media = session.get(Media, media_id)
    if media is None:
        raise NotFound(_("No such photo."))
    return media


def open_variant(media: Media, variant: str) -> StoredObject:
    """The photo (or its thumbnail) opened for streaming; a 404 if its object is gone."""
    key = media.thumbnail_key if variant == "thumbnail" else media.storage_key
    try:
        return storage().open(key)
    except KeyError as exc:
        raise NotFound(_("No such photo.")) from exc


def delete_expired(session: Session, now: dt.datetime, limit: int = 1000) -> int:
    """Delete uploads never attached before they expired: objects first, then rows (a
    deletion that fails to commit is done again by the next run)."""
    expired = session.scalars(
        select(Media)
        .where(Media.expires_at < now)
        .order_by(Media.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    store = storage()
    for media in expired:
        store.delete(media.storage_key)
        store.delete(media.thumbnail_key)
        session.delete(media)
    session.flush()
    return len(expired)
