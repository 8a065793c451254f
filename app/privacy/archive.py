"""A copy of one's data as a ZIP with the photos of one's tips, made by a job.

The synchronous copy (GET /me/data) answers JSON with links to photos; this one carries the
photos themselves: `data.json` (the same document) and `photos/<media id>.<ext>`. The file is
written 0640 under EXPORT_ROOT/personal/ (app/core/private_files.py), downloaded by its owner
only, and deleted after ARCHIVE_DAYS, or at once when the account is erased.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
import zipfile
from pathlib import Path

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.core import private_files
from app.core.errors import Conflict, NotFound
from app.core.i18n import _
from app.media.models import Media
from app.media.storage import MediaStorage
from app.privacy import export
from app.privacy.models import DataArchive

ARCHIVE_DAYS = 7
STALE_AFTER = dt.timedelta(hours=1)
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def path_of(export_root: str | Path, archive_id: uuid.UUID) -> Path:
    return Path(export_root) / "personal" / f"{archive_id}.zip"


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


def ready_file(archive: DataArchive, export_root: str | Path) -> Path:
    if archive.status != "ready":
        raise Conflict(_("The archive is not ready; ask again later."))
    return path_of(export_root, archive.id)


def build(
    session: Session, archive_id: uuid.UUID, export_root: str | Path, storage: MediaStorage
) -> str:
    """Write the archive's ZIP; its status says how it went. A photo missing from storage is
    noted in `data.json`, not fatal."""
    archive = session.get(DataArchive, archive_id, with_for_update=True)
    if archive is None or archive.status != "pending":
        return "gone"
    user = session.get(User, archive.user_id)
    document = export.copy_of_data(session, user)
    photo_ids = [uuid.UUID(p["id"]) for tip in document["tips"] for p in tip["photos"]]
    photos = session.scalars(select(Media).where(Media.id.in_(photo_ids))).all()
    target = path_of(export_root, archive.id)
    private_files.ensure_dir(target.parent, root=Path(export_root))
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
    archive.status = "ready"
    archive.finished_at = _now()
    archive.expires_at = archive.finished_at + dt.timedelta(days=ARCHIVE_DAYS)
    archive.byte_size = target.stat().st_size
    session.flush()
    return archive.status


def remove(session: Session, export_root: str | Path, *conditions) -> int:
    """Delete the archives matching `conditions`, files first (a file without its row would
    never be found again)."""
    archives = session.scalars(select(DataArchive).where(*conditions)).all()
    for archive in archives:
        path_of(export_root, archive.id).unlink(missing_ok=True)
    session.execute(delete(DataArchive).where(DataArchive.id.in_([a.id for a in archives])))
    return len(archives)


def prune(session: Session, now: dt.datetime, export_root: str | Path) -> int:
    """Archives past their days go, with their files, and failed ones as old."""
    old_failure = and_(
        DataArchive.status == "failed",
        DataArchive.requested_at < now - dt.timedelta(days=ARCHIVE_DAYS),
    )
    return remove(session, export_root, or_(DataArchive.expires_at < now, old_failure))
