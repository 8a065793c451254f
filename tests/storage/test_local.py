"""What only the local backend has to show: private file modes, atomic writes, dot-files."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from app.storage import LocalStore


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "media")


def test_files_and_folders_are_not_world_readable(local: LocalStore, tmp_path: Path) -> None:
    source = tmp_path / "batch.zip"
    source.write_bytes(b"zip")
    old_umask = os.umask(0o000)
    try:
        local.put("a/b/c.jpg", b"x")
        local.put_file("a/b/d.zip", source)
    finally:
        os.umask(old_umask)
    for name in ("c.jpg", "d.zip"):
        assert stat.S_IMODE((local.root / "a" / "b" / name).stat().st_mode) == 0o640
    for folder in (local.root, local.root / "a", local.root / "a" / "b"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o750


def test_keys_are_files_under_the_root(local: LocalStore) -> None:
    local.put("3f/2a/x-full.jpg", b"x")
    assert (local.root / "3f" / "2a" / "x-full.jpg").read_bytes() == b"x"


def test_put_leaves_no_temporary_files(local: LocalStore) -> None:
    local.put("a/b.jpg", b"old")
    local.put("a/b.jpg", b"new")
    assert sorted(p.name for p in (local.root / "a").iterdir()) == ["b.jpg"]


def test_failed_put_keeps_the_old_file_intact(
    local: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    local.put("a/b.jpg", b"old")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        local.put("a/b.jpg", b"new, half-written")
    monkeypatch.undo()

    assert local.get("a/b.jpg") == b"old"
    assert sorted(p.name for p in (local.root / "a").iterdir()) == ["b.jpg"]


def test_listing_skips_temporary_files_and_builds_in_progress(local: LocalStore) -> None:
    local.put("a/b.jpg", b"x")
    (local.root / "a" / ".b.jpg.0123.tmp").write_bytes(b"half")
    (local.root / ".b1.partial").mkdir()
    (local.root / ".b1.partial" / "tips.csv").write_bytes(b"half")

    assert [info.key for info in local.list()] == ["a/b.jpg"]


def test_stale_temporary_files_of_a_killed_writer_are_removed(local: LocalStore) -> None:
    local.put("a/b.jpg", b"x")
    leftover = local.root / "a" / ".c.jpg.0123.tmp"
    leftover.write_bytes(b"half")
    hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)

    assert local.abort_stale_uploads(hour_ago) == 0  # may still be being written
    assert local.abort_stale_uploads(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)) == 1

    assert not leftover.exists() and local.get("a/b.jpg") == b"x"
