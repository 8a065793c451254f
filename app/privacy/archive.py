"""A copy of one's data as a ZIP with the photos of one's tips, made by a job.

The synchronous copy (GET /me/data) answers JSON with links to photos; this one carries the
photos themselves: `data.json` (the same document) and `photos/<media id>.<ext>`. It is built
in a local scratch file (0640, app/core/private_files.py) under EXPORT_ROOT, then stored in the
export store as `personal/<id>.zip` before the row says ready, downloaded (streamed) by its
owner only, and deleted after ARCHIVE_DAYS, or at once when the account is erased.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.core import private_files
from app.core.errors import Conflict, NotFound
from app.core.i18n import _
from app.media.models import Media
from app.privacy import export
from app.privacy.models import DataArchive
from app.storage import ObjectStore, StoredObject, owners

ARCHIVE_DAYS = 7
STALE_AFTER = dt.timedelta(hours=1)
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def key_of(archive_id: uuid.UUID) -> str:
    """The archive's key in the export store."""
    return f"personal/{archive_id}.zip"


def archive_id_of(key: str) -> uuid.UUID | None:
    """The archive a key of `key_of` belongs to (None for anything else)."""
    name = key.removeprefix("personal/").removesuffix(".zip")
    try:
        archive_id = uuid.UUID(name)
    except ValueError:
        return None
    return archive_id if key_of(archive_id) == key else None


def request(session: Session, user: User) -> tuple[DataArchive, bool]:
    """A new archive to make, or the one still being made (one at a time); True when new. One
    pending past STALE_AFTER failed (its job gave up) and no longer stands in the way."""
    pending = session.scalar(
        select(DataArchive).where(DataArchive.user_id == user.id, DataArchive.status == "pending")
    )
    if pending is not None and pending.requested_at > _now() - STALE_AFTER:
        return pending, False
    if pending is not None:
        pending.status = "failed"
    archive = DataArchive(id=uuid.uuid4(), user_id=user.id, status="pending", requested_at=_now())
    session.add(archive)
    session.flush()
    return archive, True


def get_own(session: Session, user: User, archive_id: uuid.UUID) -> DataArchive:
    """The caller's archive; anyone else's is a 404, as if it did not exist."""
    archive = session.get(DataArchive, archive_id)
    if archive is None or archive.user_id != user.id:
        raise NotFound(_("No such archive."))
    return archive


def open_ready(archive: DataArchive, archives: ObjectStore) -> StoredObject:
    """The ready archive's ZIP opened for streaming (409 before it is ready)."""
    if archive.status != "ready":
        raise Conflict(_("The archive is not ready; ask again later."))
    try:
        return archives.open(key_of(archive.id))
    except KeyError:
        raise NotFound(_("No such archive.")) from None


def build(
    session: Session,
    archive_id: uuid.UUID,
    scratch_root: str | Path,
    storage: ObjectStore,
    archives: ObjectStore,
) -> str:
    """Write the archive's ZIP in `scratch_root`, then store it in `archives`; its status says
    how it went. A photo missing from `storage` is noted in `data.json`, not fatal. The object
    is stored before the row says ready: a run that dies in between leaves an object of an
    archive not ready, which the orphan sweep removes."""
    archive = session.get(DataArchive, archive_id, with_for_update=True)
    if archive is None or archive.status != "pending":
        return "gone"
    user = session.get(User, archive.user_id)
    document = export.copy_of_data(session, user)
    photo_ids = [uuid.UUID(p["id"]) for tip in document["tips"] for p in tip["photos"]]
    photos = session.scalars(select(Media).where(Media.id.in_(photo_ids))).all()
    scratch = Path(scratch_root) / ".personal"
    private_files.ensure_dir(scratch, root=Path(scratch_root))
    target = scratch / f"{archive.id}.{os.getpid()}.zip"
    target.unlink(missing_ok=True)  # a run of this process that died (the pid came back)
    missing = []
    with private_files.open_new(target) as handle, zipfile.ZipFile(handle, "w") as bundle:
        for media in photos:
            try:
                data = storage.get(media.storage_key)
            except KeyError:
                missing.append(str(media.id))
                continue
            extension = _EXTENSIONS.get(media.content_type, "bin")
            bundle.writestr(f"photos/{media.id}.{extension}", data)
        document["photos_missing"] = missing
        bundle.writestr(
            "data.json",
            json.dumps(document, ensure_ascii=False, indent=1),
            compress_type=zipfile.ZIP_DEFLATED,
        )
    try:
        byte_size = target.stat().st_size
        archives.put_file(key_of(archive.id), target, move=True)
    finally:
        target.unlink(missing_ok=True)
    archive.status = "ready"
    archive.finished_at = _now()
    archive.expires_at = archive.finished_at + dt.timedelta(days=ARCHIVE_DAYS)
    archive.byte_size = byte_size
    session.flush()
    return archive.status


def remove(session: Session, archives: ObjectStore, *conditions) -> int:
    """Delete the archives matching `conditions`, objects first (the sweep would find an
    object without its row, but only a day later)."""
    rows = session.scalars(select(DataArchive).where(*conditions)).all()
    for archive in rows:
        archives.delete(key_of(archive.id))
    session.execute(delete(DataArchive).where(DataArchive.id.in_([a.id for a in rows])))
    return len(rows)


def prune(session: Session, now: dt.datetime, archives: ObjectStore) -> int:
    """Archives past their days go, with their files, and failed ones as old."""
    old_failure = and_(
        DataArchive.status == "failed",
        DataArchive.requested_at < now - dt.timedelta(days=ARCHIVE_DAYS),
    )
    return remove(session, archives, or_(DataArchive.expires_at < now, old_failure))


def referenced_archives(session: Session, keys: Sequence[str]) -> set[str]:
    """Archives (`personal/<id>.zip`) that are ready; keys of no archive are not ours: kept."""
    ids = {key: archive_id_of(key) for key in keys}
    ready = set(
        session.scalars(
            select(DataArchive.id).where(
                DataArchive.id.in_({i for i in ids.values() if i}),
                DataArchive.status == "ready",
            )
        )
    )
    return {key for key, archive_id in ids.items() if archive_id is None or archive_id in ready}


def register_stored_objects() -> None:
    """Data archives are the export store's `personal/` keys (app/storage/owners.py);
    create_app calls this."""
    owners.register("exports", "personal/", referenced_archives)
