"""LocalStorage and media_key: round trips, atomic writes, and no way out of the root."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import pytest

from app.media.storage import LocalStorage, MediaStorage, media_key

MEDIA_ID = uuid.UUID("3f2a9c1e-0b7d-4e1a-9c3b-5d6e7f8a9b0c")


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "media")


def test_round_trip(storage: LocalStorage) -> None:
    key = media_key(MEDIA_ID, "full")
    assert not storage.exists(key)

    storage.put(key, b"\xff\xd8pixels\xff\xd9")

    assert storage.exists(key)
    assert storage.get(key) == b"\xff\xd8pixels\xff\xd9"
    assert (storage.root / "3f" / "2a" / f"{MEDIA_ID}-full.jpg").read_bytes() == storage.get(key)
    storage.delete(key)
    assert not storage.exists(key)
    with pytest.raises(KeyError):
        storage.get(key)


def test_is_a_media_storage(storage: LocalStorage) -> None:
    backend: MediaStorage = storage
    backend.put("a/b.jpg", b"x")
    assert backend.get("a/b.jpg") == b"x"


def test_files_and_folders_are_not_world_readable(storage: LocalStorage) -> None:
    old_umask = os.umask(0o000)
    try:
        storage.put("a/b/c.jpg", b"x")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((storage.root / "a" / "b" / "c.jpg").stat().st_mode) == 0o640
    for folder in (storage.root, storage.root / "a", storage.root / "a" / "b"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o750


def test_put_replaces_and_leaves_no_temporary_files(storage: LocalStorage) -> None:
    storage.put("a/b.jpg", b"old")
    storage.put("a/b.jpg", b"new")
    assert storage.get("a/b.jpg") == b"new"
    assert sorted(p.name for p in (storage.root / "a").iterdir()) == ["b.jpg"]


def test_failed_put_keeps_the_old_file_intact(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage.put("a/b.jpg", b"old")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        storage.put("a/b.jpg", b"new, half-written")
    monkeypatch.undo()

    assert storage.get("a/b.jpg") == b"old"
    assert sorted(p.name for p in (storage.root / "a").iterdir()) == ["b.jpg"]


def test_delete_of_a_missing_key_is_fine(storage: LocalStorage) -> None:
    storage.delete("no/such.jpg")
    storage.delete(media_key(MEDIA_ID, "thumb"))


def test_get_of_a_missing_key_raises_key_error(storage: LocalStorage) -> None:
    with pytest.raises(KeyError):
        storage.get("no/such.jpg")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../x",
        "..",
        ".",
        "/etc/passwd",
        "a/../../b",
        "a/./b",
        "a\\b",
        "..\\..\\x",
        "a//b",
        "a/",
        "~/x",
        "a b.jpg",
        "a\x00b",
        "é.jpg",
        "C:x",
    ],
)
def test_keys_that_could_escape_the_root_are_rejected(storage: LocalStorage, key: str) -> None:
    for operation in (
        lambda: storage.put(key, b"x"),
        lambda: storage.get(key),
        lambda: storage.delete(key),
        lambda: storage.exists(key),
    ):
        with pytest.raises(ValueError):
            operation()
    assert not storage.root.exists()  # nothing was created anywhere


def test_media_key() -> None:
    assert media_key(MEDIA_ID, "full") == f"3f/2a/{MEDIA_ID}-full.jpg"
    assert media_key(MEDIA_ID, "thumb") == "3f/2a/3f2a9c1e-0b7d-4e1a-9c3b-5d6e7f8a9b0c-thumb.jpg"
    with pytest.raises(ValueError):
        media_key(MEDIA_ID, "../full")


def test_media_keys_are_valid_storage_keys(storage: LocalStorage) -> None:
    for _ in range(20):
        key = media_key(uuid.uuid4(), "thumb")
        storage.put(key, b"x")
        assert storage.exists(key)
