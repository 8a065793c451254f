"""Where files live: photos and thumbnails (`media_store`), clue-batch files and data archives
(`export_store`), behind one interface (`ObjectStore`, base.py) with two backends chosen by
STORAGE_BACKEND: `local` (folders MEDIA_ROOT and EXPORT_ROOT, the embedded default) or `s3`
(S3_BUCKET on S3_ENDPOINT_URL, keys under `media/` and `exports/`), so that any number of app
nodes and workers on any hosts share the same files.

Write order (docs/operations.md, "File storage"): the object first, then the row that points to
it, committed; deletion removes the object before the row's deletion is committed. A crash in
between leaves an object no row points to, never a row without its object (a deletion that
fails to commit is retried by its job, and a missing object is no error for it); the periodic
sweep (sweep.py) removes such orphans once they are older than STORAGE_ORPHAN_GRACE_HOURS.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from flask import Flask, Response, current_app

from app.storage.base import ObjectInfo, ObjectStore, StoredObject, check_key
from app.storage.local import LocalStore
from app.storage.s3 import S3Store, make_client

__all__ = [
    "LocalStore",
    "ObjectInfo",
    "ObjectStore",
    "S3Store",
    "StoredObject",
    "build_stores",
    "check_key",
    "export_store",
    "media_store",
    "streamed",
]

BACKENDS = ("local", "s3")
NAMESPACES = ("media", "exports")
_lock = threading.Lock()


def build_stores(config: dict[str, Any]) -> dict[str, ObjectStore]:
    """The stores of each namespace for `config` (a Flask config or any mapping)."""
    backend = config["STORAGE_BACKEND"]
    if backend == "local":
        return {
            "media": LocalStore(config["MEDIA_ROOT"]),
            "exports": LocalStore(config["EXPORT_ROOT"]),
        }
    if backend == "s3":
        client = make_client(
            config["S3_ENDPOINT_URL"],
            config["S3_REGION"],
            config["S3_ACCESS_KEY_ID"],
            config["S3_SECRET_ACCESS_KEY"],
            config["S3_ADDRESSING_STYLE"],
        )
        prefix = config["S3_KEY_PREFIX"]
        bucket = config["S3_BUCKET"]
        return {name: S3Store(client, bucket, f"{prefix}{name}/") for name in NAMESPACES}
    raise ValueError(f"STORAGE_BACKEND must be one of {BACKENDS}, not {backend!r}")


SETTINGS = (
    "STORAGE_BACKEND",
    "MEDIA_ROOT",
    "EXPORT_ROOT",
    "S3_ENDPOINT_URL",
    "S3_BUCKET",
    "S3_REGION",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "S3_KEY_PREFIX",
    "S3_ADDRESSING_STYLE",
)


def _stores(app: Flask) -> dict[str, ObjectStore]:
    """Made on first use in each process (a boto3 client must not cross a fork), then shared
    while the settings stay the same."""
    identity = (os.getpid(), *(app.config[name] for name in SETTINGS))
    made = app.extensions.get("storage")
    if made is None or made[0] != identity:
        with _lock:
            made = app.extensions.get("storage")
            if made is None or made[0] != identity:
                made = (identity, build_stores(app.config))
                app.extensions["storage"] = made
    return made[1]


def media_store() -> ObjectStore:
    """Photos and thumbnails (keys from app.media.storage.media_key)."""
    return _stores(current_app._get_current_object())["media"]


def export_store() -> ObjectStore:
    """Clue-batch files (`<batch id>/<name>`) and data archives (`personal/<id>.zip`)."""
    return _stores(current_app._get_current_object())["exports"]


def streamed(stored: StoredObject, mimetype: str, *, download_name: str | None = None) -> Response:
    """A response that streams `stored` chunk by chunk (memory stays flat whatever its size),
    with its Content-Length; the object is closed when the response is, even if unread."""
    response = Response(stored.chunks(), mimetype=mimetype, direct_passthrough=True)
    response.content_length = stored.size
    response.call_on_close(stored.close)
    if download_name is not None:
        response.headers.set("Content-Disposition", "attachment", filename=download_name)
    return response
