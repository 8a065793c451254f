"""Objects and rows together, on both backends: an interrupted upload leaves no orphan row or
object, a crash between upload and commit leaves an object the sweep removes, deleted rows
take their objects, and an erasure leaves no object of the person behind."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import func, select

from app.config import PROJECT_ROOT
from app.core import jobs as jobs_module
from app.exports.models import ClueBatch
from app.media import service as media_service
from app.media.models import Media
from app.privacy import archive, deletion
from app.privacy.models import DataArchive
from app.storage import export_store, media_store
from app.storage.jobs import sweep_all, sweep_orphan_objects
from tests.tips.conftest import jpeg, upload

GRACE_H = 24


def _later() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(hours=GRACE_H, minutes=1)


def _keys(store) -> set[str]:
    return {info.key for info in store.list()}


def _upload_settings() -> dict[str, int]:
    return {
        "max_pixels": current_app.config["MEDIA_MAX_PIXELS"],
        "unattached_hours": current_app.config["UNATTACHED_MEDIA_HOURS"],
    }


def _media_rows(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Media))


class _CutOff(ConnectionError):
    pass


class _CutAfterFirstPut:
    """The configured store, with the connection cut on the second write (the thumbnail):
    an upload interrupted half-way. Reads and deletes go through."""

    def __init__(self, store) -> None:
        self.store = store
        self.puts = 0

    def put(self, key, data):
        self.puts += 1
        if self.puts > 1:
            raise _CutOff("connection reset by peer")
        self.store.put(key, data)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_an_upload_cut_off_half_way_leaves_no_row_and_no_object(
    stores_of, client, session, monkeypatch
):
    cut = _CutAfterFirstPut(media_store())
    monkeypatch.setattr(media_service, "storage", lambda: cut)
    rows = _media_rows(session)

    with pytest.raises(_CutOff):
        media_service.store_upload(session, None, jpeg(), **_upload_settings())

    assert cut.puts == 2  # the photo was stored, the thumbnail was not
    assert _media_rows(session) == rows
    assert _keys(media_store()) == set()


def test_an_upload_whose_transaction_fails_leaves_an_object_the_sweep_removes(
    stores_of, client, session
):
    kept = upload(client, jpeg()).json["id"]
    savepoint = session.begin_nested()
    orphan = media_service.store_upload(session, None, jpeg(), **_upload_settings())
    orphan_keys = {orphan.storage_key, orphan.thumbnail_key}
    savepoint.rollback()  # the commit that never happened
    assert orphan_keys <= _keys(media_store())

    young = sweep_all(session, dt.datetime.now(dt.UTC), GRACE_H)
    assert young["media"].deleted == 0  # may belong to a transaction about to commit

    swept = sweep_all(session, _later(), GRACE_H)

    assert swept["media"].deleted == 2
    left = _keys(media_store())
    assert not orphan_keys & left
    row = session.get(Media, uuid.UUID(kept))
    assert {row.storage_key, row.thumbnail_key} == left


def test_export_objects_of_no_live_batch_or_ready_archive_are_swept(
    stores_of, session, create_user
):
    user = create_user(roles=["police_liaison"], jurisdiction=["110105001000"])
    ready = ClueBatch(
        created_by=user.id, creator_role="police_liaison", purpose="p", case_reference="c",
        status="ready",
    )  # fmt: skip
    failed = ClueBatch(
        created_by=user.id, creator_role="police_liaison", purpose="p", case_reference="c",
        status="failed",
    )  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    kept_archive = DataArchive(id=uuid.uuid4(), user_id=user.id, status="ready", requested_at=now)
    stale_archive = DataArchive(
        id=uuid.uuid4(), user_id=user.id, status="pending", requested_at=now
    )
    session.add_all([ready, failed, kept_archive, stale_archive])
    session.flush()
    store = export_store()
    keep = {f"{ready.id}/tips.csv", archive.key_of(kept_archive.id), "notes/readme.txt"}
    gone = {
        f"{failed.id}/tips.csv",
        f"{uuid.uuid4()}/batch.zip",  # a batch row that is no more
        archive.key_of(stale_archive.id),  # its build died after the upload
        archive.key_of(uuid.uuid4()),
    }
    for key in keep | gone:
        store.put(key, b"x")

    swept = sweep_all(session, _later(), GRACE_H)

    assert swept["exports"].deleted == len(gone)
    assert _keys(store) == keep


def test_expired_uploads_take_their_objects(stores_of, client, session):
    media_id = upload(client, jpeg()).json["id"]
    assert len(_keys(media_store())) == 2
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)

    assert media_service.delete_expired(session, later) >= 1

    assert session.get(Media, uuid.UUID(media_id)) is None
    assert _keys(media_store()) == set()


def test_an_erasure_leaves_no_object_of_the_person(
    stores_of, client, session, create_user, token_for
):
    person = create_user()
    headers = token_for(person)
    upload(client, jpeg(), headers=headers)
    made, _new = archive.request(session, person)
    archive.build(session, made.id, stores_of["EXPORT_ROOT"], media_store(), export_store())
    assert len(_keys(media_store())) == 2 and len(_keys(export_store())) == 1

    deletion.erase(session, person.id, archives=export_store(), media=media_store())

    assert _keys(media_store()) == set() and _keys(export_store()) == set()


def test_the_sweep_is_periodic(app):
    periodic = {
        p.periodic_id: p for p in jobs_module.jobs.periodic_registry.periodic_tasks.values()
    }
    assert periodic["sweep_orphan_objects"].task is sweep_orphan_objects


_KILLED_UPLOAD = """
import json, os, signal, sys
from tests.conftest import make_app
from tests.tips.conftest import jpeg
from app.extensions import db
from app.media import service
database_url, settings = sys.argv[1], json.loads(sys.argv[2])
app = make_app(database_url, **settings)
with app.app_context():
    media = service.store_upload(
        db.session,
        None,
        jpeg(),
        max_pixels=app.config["MEDIA_MAX_PIXELS"],
        unattached_hours=app.config["UNATTACHED_MEDIA_HOURS"],
    )
    print(json.dumps([str(media.id), media.storage_key, media.thumbnail_key]), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # after the objects, before the commit
    db.session.commit()
"""


def test_a_process_killed_between_upload_and_commit_leaves_only_what_the_sweep_removes(
    stores_of, session, database_url
):
    settings = dict(stores_of)
    env = {**os.environ, "QF_TEST_STORAGE": "local", "PYTHONPATH": str(PROJECT_ROOT)}
    killed = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", _KILLED_UPLOAD, database_url, json.dumps(settings)],
        capture_output=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    media_id, *keys = json.loads(killed.stdout.decode().strip().splitlines()[-1])

    assert session.get(Media, uuid.UUID(media_id)) is None  # no row: it was never committed
    assert set(keys) <= _keys(media_store())

    sweep_all(session, _later(), GRACE_H)

    assert not set(keys) & _keys(media_store())


def test_photos_are_streamed_from_the_store_with_their_length(
    stores_of, client, session, create_user, token_for
):
    headers = token_for(create_user())
    media_id = upload(client, jpeg(640, 480), headers=headers).json["id"]
    row = session.get(Media, uuid.UUID(media_id))

    answer = client.get(f"/api/v1/media/{media_id}", headers=headers)

    assert answer.status_code == 200 and answer.is_streamed
    assert int(answer.headers["Content-Length"]) == row.byte_size
    assert answer.get_data() == media_store().get(row.storage_key)
    assert answer.headers["Cache-Control"] == "no-store"


def test_a_photo_whose_object_is_gone_is_not_found(
    stores_of, client, session, create_user, token_for
):
    headers = token_for(create_user())
    media_id = upload(client, jpeg(), headers=headers).json["id"]
    media_store().delete(session.get(Media, uuid.UUID(media_id)).storage_key)

    answer = client.get(f"/api/v1/media/{media_id}", headers=headers)

    assert answer.status_code == 404 and answer.mimetype == "application/problem+json"


def test_builds_a_killed_worker_left_in_the_scratch_folder_are_swept(stores_of, session):
    scratch = Path(stores_of["EXPORT_ROOT"])
    partial = scratch / f".{uuid.uuid4()}.partial"
    partial.mkdir(parents=True)
    (partial / "tips.csv").write_text("reporter_name\n张三\n")
    unsent = scratch / ".personal" / f"{uuid.uuid4()}.4242.zip"
    unsent.parent.mkdir()
    unsent.write_bytes(b"PK")

    assert sweep_all(session, dt.datetime.now(dt.UTC), GRACE_H)["scratch"].deleted == 0
    assert sweep_all(session, _later(), GRACE_H)["scratch"].deleted == 2

    assert not partial.exists() and not unsent.exists()


def test_keys_no_owner_claims_are_kept_and_each_prefix_asks_its_own_rule(session):
    """The sweep asks the owner registered for the longest prefix of a key; a key under no
    owner's prefix is not ours to delete (app/storage/owners.py)."""
    from app.storage import owners

    asked: dict[str, list[str]] = {}

    def rule(name, keep):
        def referenced(_session, keys):
            asked[name] = sorted(keys)
            return {k for k in keys if k in keep}

        return referenced

    saved = dict(owners._owners.get("exports", {}))
    try:
        owners._owners["exports"] = {}
        owners.register("exports", "personal/", rule("archives", {"personal/a.zip"}))
        owners.register("exports", "batches/", rule("batches", set()))
        keys = ["personal/a.zip", "personal/b.zip", "batches/x.csv", "elsewhere/y"]
        kept = owners.referenced(session, "exports", keys)
    finally:
        owners._owners["exports"] = saved
    assert asked == {"archives": ["personal/a.zip", "personal/b.zip"], "batches": ["batches/x.csv"]}
    assert kept == {"personal/a.zip", "elsewhere/y"}
    with pytest.raises(ValueError, match="no store"):
        owners.register("tiles", "", rule("x", set()))
