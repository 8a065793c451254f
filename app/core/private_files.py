"""Files the application keeps on disk (photos, clue batches, local secrets): readable by the
service's own user and group, never by other accounts of the machine.

Modes are given when a file or directory is created (`os.open` and `os.mkdir` with an explicit
mode, which the umask can only narrow), never by a chmod after the data is written, so there is
no moment at which a file holding personal data is open to others, whatever the process umask.
No Flask, no database: the clue-batch writer (app/exports/files.py) uses it too.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o640
DIR_MODE = 0o750
SECRET_FILE_MODE = 0o600
SECRET_DIR_MODE = 0o700


def ensure_dir(
    path: str | os.PathLike, mode: int = DIR_MODE, *, root: str | os.PathLike | None = None
) -> Path:
    """`path` as a directory, and so every directory from `root` (by default `path` itself)
    down to it: each is created with `mode`, or, when it exists already, loses the permissions
    `mode` does not grant (a checkout made before this rule has 0755 directories; narrowing
    is never a widening, so its order does not matter). Parents above `root` are the
    deployment's business: missing ones are made as `mkdir -p` would."""
    path = Path(path)
    top = Path(root) if root is not None else path
    top.parent.mkdir(parents=True, exist_ok=True)
    levels = [top]
    for part in path.relative_to(top).parts:
        levels.append(levels[-1] / part)
    for directory in levels:
        try:
            directory.mkdir(mode)
        except FileExistsError:
            narrow(directory, mode)
    return path


def narrow(path: str | os.PathLike, mode: int) -> None:
    """Take away the permissions of `path` that `mode` does not grant (if we own it)."""
    current = stat.S_IMODE(os.stat(path).st_mode)
    if current & ~mode:
        with contextlib.suppress(PermissionError):  # not ours: the operator's choice stands
            os.chmod(path, current & mode)


def open_new(path: str | os.PathLike, mode: int = FILE_MODE) -> BinaryIO:
    """A new file for writing bytes, created with `mode`; an existing file is an error (a stale
    one would keep its old mode)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    return os.fdopen(os.open(path, flags, mode), "wb")


def write_new(path: str | os.PathLike, data: bytes, mode: int = FILE_MODE) -> None:
    with open_new(path, mode) as file:
        file.write(data)


def replace_atomically(path: str | os.PathLike, data: bytes, mode: int = FILE_MODE) -> None:
    """Write `data` to `path` so that readers see the old content or the new, never a part:
    a temporary file in the same directory (created with `mode`), flushed to disk, renamed."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    try:
        with open_new(temporary, mode) as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
