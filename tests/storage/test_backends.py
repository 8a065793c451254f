"""The storage suite: one behaviour per test, each run against the local directory and against
S3 (moto's server over HTTP), so that both backends keep the same contract."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import pytest

from app.storage import ObjectStore
from app.storage.base import CHUNK_SIZE


def test_round_trip(store: ObjectStore) -> None:
    assert not store.exists("a/b.jpg")

    store.put("a/b.jpg", b"\xff\xd8pixels\xff\xd9")

    assert store.exists("a/b.jpg")
    assert store.get("a/b.jpg") == b"\xff\xd8pixels\xff\xd9"
    store.delete("a/b.jpg")
    assert not store.exists("a/b.jpg")
    with pytest.raises(KeyError):
        store.get("a/b.jpg")


def test_put_replaces_the_object(store: ObjectStore) -> None:
    store.put("a/b.jpg", b"old")
    store.put("a/b.jpg", b"new")
    assert store.get("a/b.jpg") == b"new"
    assert [info.key for info in store.list()] == ["a/b.jpg"]


def test_missing_objects_raise_key_error(store: ObjectStore) -> None:
    with pytest.raises(KeyError):
        store.get("no/such.jpg")
    with pytest.raises(KeyError):
        store.open("no/such.jpg")


def test_deleting_a_missing_object_is_fine(store: ObjectStore) -> None:
    store.delete("no/such.jpg")


def test_open_streams_in_chunks_with_the_size_known_first(store: ObjectStore) -> None:
    data = os.urandom(CHUNK_SIZE * 2 + 123)
    store.put("big/file.bin", data)

    with store.open("big/file.bin") as stored:
        assert stored.size == len(data)
        chunks = list(stored.chunks(CHUNK_SIZE))

    assert [len(c) for c in chunks] == [CHUNK_SIZE, CHUNK_SIZE, 123]
    assert b"".join(chunks) == data


def test_an_opened_object_closed_early_can_be_opened_again(store: ObjectStore) -> None:
    store.put("a/b.bin", os.urandom(3 * CHUNK_SIZE))
    stored = store.open("a/b.bin")
    next(stored.chunks(1024))
    stored.close()
    assert store.open("a/b.bin").read()[:0] == b""


def test_put_file_streams_a_large_file_and_move_removes_the_source(
    store: ObjectStore, tmp_path: Path
) -> None:
    # Over the S3 backend's multipart threshold (16 MiB): parts, not one body.
    source = tmp_path / "batch.zip"
    digest = hashlib.sha256()
    with open(source, "wb") as out:
        for _ in range(17):
            block = os.urandom(CHUNK_SIZE)
            digest.update(block)
            out.write(block)

    store.put_file("b1/batch.zip", source, move=True)

    assert not source.exists()
    stored = store.open("b1/batch.zip")
    assert stored.size == 17 * CHUNK_SIZE
    streamed = hashlib.sha256()
    for chunk in stored.chunks():
        streamed.update(chunk)
    assert streamed.hexdigest() == digest.hexdigest()


def test_put_file_without_move_keeps_the_source(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "tips.csv"
    source.write_bytes(b"tip_id\r\n")
    store.put_file("b1/tips.csv", source)
    assert source.read_bytes() == store.get("b1/tips.csv") == b"tip_id\r\n"


def test_delete_prefix_removes_that_folder_only(store: ObjectStore) -> None:
    for key in ("b1/tips.csv", "b1/batch.zip", "b10/tips.csv", "b2/tips.csv"):
        store.put(key, b"x")

    assert store.delete_prefix("b1/") == 2

    assert sorted(info.key for info in store.list()) == ["b10/tips.csv", "b2/tips.csv"]
    assert store.delete_prefix("b1/") == 0


def test_delete_prefix_needs_a_folder(store: ObjectStore) -> None:
    store.put("b1/tips.csv", b"x")
    for prefix in ("", "/", "b1", "../", "b1/../"):
        with pytest.raises(ValueError):
            store.delete_prefix(prefix)
    assert store.exists("b1/tips.csv")


def test_list_gives_keys_sizes_and_times(store: ObjectStore) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    store.put("a/1.jpg", b"1")
    store.put("b/2.jpg", b"22")

    listed = {info.key: info for info in store.list()}

    assert set(listed) == {"a/1.jpg", "b/2.jpg"}
    assert listed["b/2.jpg"].size == 2
    assert all(before <= info.modified_at <= dt.datetime.now(dt.UTC) for info in listed.values())
    assert [info.key for info in store.list("b/")] == ["b/2.jpg"]


def test_nothing_is_stale_right_after_a_write(store: ObjectStore) -> None:
    store.put("a/1.jpg", b"1")
    assert store.abort_stale_uploads(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)) == 0
    assert store.exists("a/1.jpg")


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
        ".hidden",
        "a/.b.tmp",
    ],
)
def test_keys_that_could_escape_or_hide_are_rejected(store: ObjectStore, key: str) -> None:
    for operation in (
        lambda: store.put(key, b"x"),
        lambda: store.get(key),
        lambda: store.open(key),
        lambda: store.delete(key),
        lambda: store.exists(key),
    ):
        with pytest.raises(ValueError):
            operation()
    assert list(store.list()) == []
