"""The local-directory backend (the embedded default): one file per key under a root folder.

Files are 0640 and folders 0750 from the moment they exist (app/core/private_files.py); writes
go to a dot-named temporary file renamed into place, so readers never see a partial object and
an interrupted write leaves at most a dot-file, which listings skip and the sweep removes.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from app.core import private_files
from app.storage.base import CHUNK_SIZE, ObjectInfo, StoredObject, check_key, check_prefix


class LocalStore:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The file for `key`; ValueError for anything but a valid key."""
        return self.root.joinpath(*check_key(key).split("/"))

    def _parent_of(self, key: str) -> Path:
        target = self.path(key)
        private_files.ensure_dir(target.parent, root=self.root)
        return target

    def put(self, key: str, data: bytes) -> None:
        private_files.replace_atomically(self._parent_of(key), data)

    def put_file(self, key: str, path: str | os.PathLike, *, move: bool = False) -> None:
        target = self._parent_of(key)
        if move:
            try:
                os.replace(path, target)  # same file system: a rename, nothing copied
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
        try:
            with open(path, "rb") as source, private_files.open_new(temporary) as out:
                shutil.copyfileobj(source, out, CHUNK_SIZE)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        if move:
            Path(path).unlink(missing_ok=True)

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise KeyError(key) from None

    def open(self, key: str) -> StoredObject:
        try:
            file = open(self.path(key), "rb")  # noqa: SIM115 - closed by StoredObject
        except (FileNotFoundError, IsADirectoryError):
            raise KeyError(key) from None
        return StoredObject(key, os.fstat(file.fileno()).st_size, file)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        folder = self.root.joinpath(*check_prefix(prefix)[:-1].split("/"))
        count = sum(1 for _ in self._walk(folder))
        shutil.rmtree(folder, ignore_errors=True)
        return count

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for path in self._walk(self.root):
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix):
                stat = path.stat()
                modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
                yield ObjectInfo(key, stat.st_size, modified)

    def _walk(self, top: Path) -> Iterator[Path]:
        """Files under `top`, skipping dot-names (temporary files, builds in progress)."""
        for folder, folders, names in os.walk(top):
            folders[:] = [name for name in folders if not name.startswith(".")]
            for name in names:
                if not name.startswith("."):
                    yield Path(folder, name)

    def abort_stale_uploads(self, before: dt.datetime) -> int:
        """Temporary files of writes a killed process left (dot-named, older than `before`)."""
        count = 0
        for folder, _folders, names in os.walk(self.root):
            for name in names:
                path = Path(folder, name)
                if name.startswith(".") and name.endswith(".tmp"):
                    modified = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
                    if modified < before:
                        path.unlink(missing_ok=True)
                        count += 1
        return count
