"""POST /api/v1/me/data/export: a ZIP of my data with my tips' photos, made by a job, downloaded
by me only, and gone after its days or with my account."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
import zipfile

import pytest
from flask import current_app
from sqlalchemy import func, select, text

from app.media.models import Media
from app.privacy import archive, deletion
from app.privacy.models import AccountDeletion
from app.storage import export_store, media_store
from tests.tips.conftest import jpeg, tip_body, upload

EXPORT = "/api/v1/me/data/export"


@pytest.fixture
def reporter(client, create_user, token_for):
    """A volunteer with a named tip carrying a photo."""
    user = create_user()
    headers = token_for(user)
    photo = upload(client, jpeg(), headers=headers).json["id"]
    tip = client.post(
        "/api/v1/tips",
        json=tip_body(media_ids=[photo]),
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert tip.status_code == 201, tip.json
    return user, headers, photo


def _build(session, archive_id):
    return archive.build(
        session,
        uuid.UUID(archive_id),
        current_app.config["EXPORT_ROOT"],
        media_store(),
        export_store(),
    )


def test_the_archive_carries_my_data_and_my_tips_photos(client, session, reporter, connection):
    user, headers, photo = reporter
    asked = client.post(EXPORT, headers=headers)
    assert asked.status_code == 202 and asked.json["status"] == "pending"
    assert asked.json["download_url"] is None
    jobs = connection.execute(
        text("SELECT count(*) FROM procrastinate_jobs WHERE task_name LIKE '%build_data_archive'")
    ).scalar_one()
    assert jobs == 1
    early = client.get(f"/api/v1/me/data/archives/{asked.json['id']}/file", headers=headers)
    assert early.status_code == 409 and early.mimetype == "application/problem+json"
    assert _build(session, asked.json["id"]) == "ready"
    status = client.get(f"/api/v1/me/data/archives/{asked.json['id']}", headers=headers).json
    assert status["status"] == "ready" and status["byte_size"] > 0
    got = client.get(status["download_url"], headers=headers)
    assert got.status_code == 200 and got.mimetype == "application/zip"
    bundle = zipfile.ZipFile(io.BytesIO(got.data))
    data = json.loads(bundle.read("data.json"))
    assert data["profile"]["id"] == str(user.id) and data["photos_missing"] == []
    stored = session.get(Media, uuid.UUID(photo))
    assert bundle.read(f"photos/{photo}.jpg") == media_store().get(stored.storage_key)


def test_asking_again_while_it_is_made_answers_the_same_archive(client, reporter):
    _user, headers, _photo = reporter
    first = client.post(EXPORT, headers=headers).json
    assert client.post(EXPORT, headers=headers).json["id"] == first["id"]


def test_another_persons_archive_is_not_found(client, session, reporter, create_user, token_for):
    _user, headers, _photo = reporter
    made = client.post(EXPORT, headers=headers).json["id"]
    _build(session, made)
    stranger = token_for(create_user())
    for path in (f"/api/v1/me/data/archives/{made}", f"/api/v1/me/data/archives/{made}/file"):
        answer = client.get(path, headers=stranger)
        assert answer.status_code == 404 and answer.mimetype == "application/problem+json"


def test_expired_archives_and_erased_accounts_take_their_files(client, session, reporter):
    user, headers, _photo = reporter
    store = export_store()
    made = uuid.UUID(client.post(EXPORT, headers=headers).json["id"])
    _build(session, str(made))
    assert store.exists(archive.key_of(made))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=archive.ARCHIVE_DAYS, minutes=1)
    assert archive.prune(session, later - dt.timedelta(days=1), store) == 0
    assert archive.prune(session, later, store) == 1 and not store.exists(archive.key_of(made))
    second = uuid.UUID(client.post(EXPORT, headers=headers).json["id"])
    _build(session, str(second))
    session.add(
        AccountDeletion(
            user_id=user.id,
            requested_at=dt.datetime.now(dt.UTC),
            erase_after=dt.datetime.now(dt.UTC),
        )
    )
    session.flush()
    deletion.erase_due(session, dt.datetime.now(dt.UTC), archives=store, media=media_store())
    assert not store.exists(archive.key_of(second))
    assert session.scalar(select(func.count()).select_from(archive.DataArchive)) == 0


def test_an_archive_needs_a_signed_in_caller(client):
    answer = client.post(EXPORT)
    assert answer.status_code == 401 and answer.mimetype == "application/problem+json"
