"""Which clue-batch files in the export store a batch still points to: the orphan sweep's rule
for them (app/storage/owners.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.exports.models import ClueBatch
from app.storage import owners


def _batch_id(key: str) -> uuid.UUID | None:
    if "/" not in key:
        return None
    try:
        return uuid.UUID(key.split("/", 1)[0])
    except ValueError:
        return None


def referenced_batch_files(session: Session, keys: Sequence[str]) -> set[str]:
    """Files (`<batch id>/...`) of batches not failed whose files were not deleted; keys of no
    batch are not ours: kept."""
    batches = {key: _batch_id(key) for key in keys}
    live = set(
        session.scalars(
            select(ClueBatch.id).where(
                ClueBatch.id.in_({i for i in batches.values() if i}),
                ClueBatch.status != "failed",
                ClueBatch.files_deleted_at.is_(None),
            )
        )
    )
    return {key for key, batch_id in batches.items() if batch_id is None or batch_id in live}


def register_stored_objects() -> None:
    """Batch files are the export store's keys no longer prefix claims; create_app calls
    this."""
    owners.register("exports", "", referenced_batch_files)
