"""What every object store offers: keys, the interface, and an object opened for streaming.

No Flask, no database: the backends (local.py, s3.py) and the clue-batch writer use it alone.
Keys are plain relative paths of [A-Za-z0-9_.-] segments, none starting with a dot (dot-names
are the local backend's temporary files and builds in progress), no `..`, so that a bug
upstream can never turn into a path traversal or a key outside the store's prefix.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

CHUNK_SIZE = 1024 * 1024
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def check_key(key: str) -> str:
    """`key` if it is a valid object key, else ValueError."""
    if not isinstance(key, str) or not key or len(key) > 512:
        raise ValueError(f"invalid storage key {key!r}")
    if not all(_SEGMENT.fullmatch(segment) for segment in key.split("/")):
        raise ValueError(f"invalid storage key {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """A folder-like prefix: a valid key followed by `/` (never empty: no store-wide wipe)."""
    if not isinstance(prefix, str) or not prefix.endswith("/"):
        raise ValueError(f"invalid storage prefix {prefix!r}")
    check_key(prefix[:-1])
    return prefix


@dataclass(frozen=True)
class ObjectInfo:
    """One object as a listing shows it: its key (relative to the store), size and age."""

    key: str
    size: int
    modified_at: dt.datetime


class StoredObject:
    """An object opened for reading, to stream: its size is known before the first byte, so a
    response can send Content-Length; `chunks()` reads it piece by piece and closes it at the
    end (or `close()` does, when the reader stops early)."""

    def __init__(self, key: str, size: int, stream, etag: str | None = None) -> None:
        self.key = key
        self.size = size
        self.etag = etag
        self._stream = stream

    def chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        try:
            while chunk := self._stream.read(chunk_size):
                yield chunk
        finally:
            self.close()

    def read(self) -> bytes:
        try:
            return self._stream.read()
        finally:
            self.close()

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> StoredObject:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


class ObjectStore(Protocol):
    """A flat store of private objects under keys (see `check_key`). Writes are whole: a reader
    sees the old object or the new one, never a part, and an interrupted write leaves no
    object under the key."""

    def put(self, key: str, data: bytes) -> None: ...

    def put_file(self, key: str, path: str | os.PathLike, *, move: bool = False) -> None:
        """Store the file at `path` (streamed, never read whole into memory); with `move`, the
        local file is gone afterwards (renamed into place when the store can)."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes under `key`; KeyError if there are none. For small objects (photos)."""
        ...

    def open(self, key: str) -> StoredObject:
        """`key` opened for streaming; KeyError if there is no such object."""
        ...

    def delete(self, key: str) -> None:
        """Remove `key`; deleting a missing key is not an error."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix` (e.g. `<batch id>/`); how many there were."""
        ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object (under `prefix`), in no particular order."""
        ...

    def abort_stale_uploads(self, before: dt.datetime) -> int:
        """Give up uploads begun before `before` and never finished (S3 multipart uploads a
        killed process left; their parts cost storage yet are no object); how many."""
        ...
