"""The orphan sweep: objects no row points to any more, and uploads never finished.

Objects are written before the rows that point to them are committed (app/storage/__init__.py),
so a process killed in between, a commit that failed, or a row deleted by a cascade leaves an
object nobody can reach. The sweep lists the store and deletes the objects older than a grace
period (longer than any transaction or build still about to commit) that `referenced` does not
claim. Keys `referenced` cannot parse are not ours and are left alone.
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.storage.base import ObjectStore

BATCH = 1000


@dataclass(frozen=True)
class SweepResult:
    deleted: int
    aborted_uploads: int


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def sweep(
    store: ObjectStore,
    referenced: Callable[[Sequence[str]], set[str]],
    before: dt.datetime,
) -> SweepResult:
    """Delete the objects of `store` last written before `before` that `referenced(keys)` (the
    subset of `keys` that rows still point to, or that are not ours) does not return, and
    abort uploads begun before `before` and never finished."""
    aborted = store.abort_stale_uploads(before)
    old = (info.key for info in store.list() if info.modified_at < before)
    deleted = 0
    for keys in _batches(old, BATCH):
        keep = referenced(keys)
        for key in keys:
            if key not in keep:
                store.delete(key)
                deleted += 1
    return SweepResult(deleted, aborted)


def sweep_scratch(root: Path, before: dt.datetime) -> int:
    """Builds a killed worker left in this host's scratch folder (EXPORT_ROOT): dot-named
    partial batch folders and data archives not yet uploaded, last touched before `before`.
    They may name consenting reporters; the next build of the same batch on another host
    cannot see them. Only the dot-named entries are the scratch's: stored objects (the local
    backend keeps them beside) are never touched here."""
    count = 0
    candidates = [*root.glob(".*.partial"), *root.glob(".personal/*.zip")]
    for path in candidates:
        try:
            modified = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        except FileNotFoundError:
            continue
        if modified < before:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            count += 1
    return count
