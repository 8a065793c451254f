"""Where photo bytes live: a minimal key/value interface, and a local-directory implementation.

Keys come from `media_key`, but LocalStorage still validates every key strictly (plain POSIX
segments of [A-Za-z0-9_.-], no `..`), so that a bug upstream can never turn into path traversal.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Protocol

from app.core import private_files

VARIANTS = ("full", "thumb")

_SEGMENT = re.compile(r"[A-Za-z0-9_.-]+")


class MediaStorage(Protocol):
    """A flat key/value store for media bytes (local files now, maybe object storage later)."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes:
        """Return the bytes stored under `key`; raises KeyError if there are none."""
        ...

    def delete(self, key: str) -> None:
        """Remove `key`; deleting a missing key is not an error."""
        ...

    def exists(self, key: str) -> bool: ...


def media_key(media_id: uuid.UUID, variant: str) -> str:
    """`3f/2a/<uuid>-<variant>.jpg`: two fan-out levels keep directories small."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown media variant {variant!r}")
    hex_id = media_id.hex
    return f"{hex_id[:2]}/{hex_id[2:4]}/{media_id}-{variant}.jpg"


class LocalStorage:
    """Files under `root`, one per key; writes are atomic so readers never see partial files.
    Files are 0640 and directories 0750 from the moment they exist (app/core/private_files.py)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The file for `key`; raises ValueError for anything but a plain relative key."""
        segments = key.split("/")
        if not key or not all(_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments):
            raise ValueError(f"invalid media key {key!r}")
        return self.root.joinpath(*segments)

    def put(self, key: str, data: bytes) -> None:
        target = self.path(key)
        private_files.ensure_dir(target.parent, root=self.root)
        private_files.replace_atomically(target, data)

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()
