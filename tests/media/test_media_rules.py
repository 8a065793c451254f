"""Who may attach which upload, at the service: an upload is taken only while it is unattached,
unexpired (its expiry strictly after now) and its sender's or sent without a token; any upload
listed that is not is refused by its position, and nothing is attached. An anonymous tip drops
the owner link of its photos; a named tip keeps it."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, orm, select, text

from app.core.errors import Unprocessable
from app.extensions import db
from app.media import service as media_service
from app.media.models import Media
from app.storage import media_store
from app.tips import service as tips_service
from tests.tips.conftest import JIANWAI, jpeg, upload

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
OWNERS = ("me", "other", "nobody")
# What an upload is when it is listed: usable only when "fresh".
STATES = ("fresh", "expires_now", "expired", "attached", "missing")


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(media_service, "_now", lambda: NOW)


@pytest.fixture
def people(create_user):
    return {"me": create_user(), "other": create_user(), "nobody": None}


@pytest.fixture
def new_tip(session, people):
    def make(reporter="me"):
        return tips_service.submit(
            session,
            people[reporter],
            {
                "category": "traffic",
                "description": "测试线索",
                "location": {"lon": JIANWAI[0], "lat": JIANWAI[1], "accuracy_m": 5},
            },
        )

    return make


@pytest.fixture
def upload_row(session, people, new_tip):
    """upload_row(owner, state): the id of an upload in that state (a "missing" one is an id
    no upload has)."""
    elsewhere = new_tip()

    def make(owner: str, state: str) -> uuid.UUID:
        media_id = uuid.uuid4()
        if state == "missing":
            return media_id
        user = people[owner]
        expires_at = {
            "fresh": NOW + dt.timedelta(microseconds=1),
            "expires_now": NOW,
            "expired": NOW - dt.timedelta(hours=1),
            "attached": None,
        }[state]
        session.add(
            Media(
                id=media_id,
                owner_id=user.id if user else None,
                tip_id=elsewhere.id if state == "attached" else None,
                content_type="image/jpeg",
                width=1,
                height=1,
                byte_size=1,
                sha256="0" * 64,
                storage_key=f"test/{media_id}",
                thumbnail_key=f"test/{media_id}.thumb",
                expires_at=expires_at,
            )
        )
        session.flush()
        return media_id

    return make


def usable_for_a_tip(owner: str, state: str, sender: str) -> bool:
    return state == "fresh" and owner in (sender, "nobody")


def refused_pointer(error: Unprocessable) -> str:
    return error.extra["errors"][0]["pointer"]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    listed=st.lists(
        st.tuples(st.sampled_from(OWNERS), st.sampled_from(STATES)), min_size=1, max_size=4
    ),
    sender=st.sampled_from(["me", "nobody"]),
)
# Every run tries at least: a token's tip takes an upload sent without one, and each state that
# refuses an upload refuses it by its own position.
@example(listed=[("me", "fresh"), ("nobody", "fresh")], sender="me")
@example(listed=[("nobody", "fresh"), ("me", "expires_now")], sender="me")
@example(listed=[("nobody", "fresh"), ("me", "fresh"), ("me", "expired")], sender="nobody")
@example(listed=[("me", "attached")], sender="me")
@example(listed=[("me", "fresh"), ("other", "missing")], sender="me")
def test_a_tip_takes_its_photos_only_when_every_one_is_usable(
    session, clock, people, new_tip, upload_row, listed, sender
):
    tip = new_tip(sender)
    ids = [upload_row(owner, state) for owner, state in listed]
    owner = people[sender]
    usable = [usable_for_a_tip(o, s, sender) for o, s in listed]
    if all(usable):
        attached = media_service.attach(session, ids, tip.id, owner=owner, anonymous=owner is None)
        assert [m.id for m in attached] == ids
        assert all(m.tip_id == tip.id and m.expires_at is None for m in attached)
    else:
        with pytest.raises(Unprocessable) as refused:
            media_service.attach(session, ids, tip.id, owner=owner, anonymous=owner is None)
        assert refused_pointer(refused.value) == f"/media_ids/{usable.index(False)}"
        session.expire_all()
        assert all(m.tip_id != tip.id for m in session.query(Media).filter(Media.id.in_(ids)))


def test_an_upload_listed_twice_is_refused(session, clock, new_tip, upload_row, people):
    photo = upload_row("me", "fresh")
    with pytest.raises(Unprocessable) as refused:
        media_service.attach(
            session, [photo, photo], new_tip().id, owner=people["me"], anonymous=False
        )
    assert refused_pointer(refused.value) == "/media_ids"


def test_no_photos_is_nothing_attached(session, clock, new_tip, people):
    assert (
        media_service.attach(session, [], new_tip().id, owner=people["me"], anonymous=False) == []
    )


@pytest.mark.parametrize("anonymous", [False, True])
def test_an_anonymous_tip_drops_the_owner_link_and_a_named_tip_keeps_it(
    session, clock, new_tip, upload_row, people, anonymous
):
    photo = upload_row("me", "fresh")
    media_service.attach(session, [photo], new_tip().id, owner=people["me"], anonymous=anonymous)
    session.expire_all()
    assert session.get(Media, photo).owner_id == (None if anonymous else people["me"].id)


# -- expiry and serving --------------------------------------------------------------------------


def test_an_upload_expiring_exactly_now_is_kept_and_one_a_moment_older_deleted(
    session, client, create_user, token_for
):
    """The sweep deletes uploads whose expiry is strictly before now, objects and row (the
    same bound that lets one be attached while its expiry is after now)."""
    media_id = uuid.UUID(upload(client, jpeg(), headers=token_for(create_user())).json["id"])
    media = session.get(Media, media_id)
    keys, expires = (media.storage_key, media.thumbnail_key), media.expires_at
    store = media_store()
    assert media_service.delete_expired(session, expires) == 0
    assert session.get(Media, media_id) is not None
    assert media_service.delete_expired(session, expires + dt.timedelta(microseconds=1)) == 1
    session.expire_all()
    assert session.get(Media, media_id) is None
    assert not any(store.exists(key) for key in keys)


def test_a_sweep_deletes_at_most_a_thousand_uploads_oldest_first(session):
    """One run takes 1,000 expired uploads, those expired longest ago (a worker's run stays
    short); the next run, fifteen minutes on, takes the rest. The objects go with their rows."""
    store = media_store()
    session.execute(
        text(
            "INSERT INTO media (id, content_type, width, height, byte_size, sha256, "
            "storage_key, thumbnail_key, expires_at) SELECT gen_random_uuid(), 'image/jpeg', 1, "
            "1, 1, repeat('0', 64), 'qf-test/sweep-' || g || '-full.jpg', "
            "'qf-test/sweep-' || g || '-thumb.jpg', "
            "TIMESTAMPTZ '2001-01-01 00:00+00' + (1002 - g) * interval '1 second' "
            "FROM generate_series(1, 1001) AS g"
        )
    )
    # Inserted newest first: the oldest (g = 1001) is the last row of the table.
    for g in (1, 2):
        store.put(f"qf-test/sweep-{g}-full.jpg", b"full")
        store.put(f"qf-test/sweep-{g}-thumb.jpg", b"thumb")
    now = dt.datetime(2001, 1, 2, tzinfo=dt.UTC)  # a sweep then: only these had expired
    ours = Media.storage_key.like("qf-test/sweep-%")
    assert session.scalar(select(func.count()).where(Media.expires_at < now)) == 1001
    assert media_service.delete_expired(session, now) == 1000
    assert session.scalars(select(Media.storage_key).where(ours)).all() == [
        "qf-test/sweep-1-full.jpg"
    ]
    assert not store.exists("qf-test/sweep-2-full.jpg")
    assert not store.exists("qf-test/sweep-2-thumb.jpg")
    assert store.exists("qf-test/sweep-1-full.jpg")
    assert media_service.delete_expired(session, now) == 1
    assert not store.exists("qf-test/sweep-1-thumb.jpg")


def test_a_photo_whose_object_is_gone_is_not_found(session, client, create_user, token_for):
    """Each variant is its own object: with the thumbnail gone the photo is still served and
    the thumbnail is a 404 problem (not a 500); the full photo gone likewise."""
    headers = token_for(create_user())
    media_id = upload(client, jpeg(), headers=headers).json["id"]
    media = session.get(Media, uuid.UUID(media_id))
    store = media_store()
    store.delete(media.thumbnail_key)
    assert client.get(f"/api/v1/media/{media_id}", headers=headers).status_code == 200
    thumb = client.get(f"/api/v1/media/{media_id}/thumbnail", headers=headers)
    assert (thumb.status_code, thumb.content_type) == (404, "application/problem+json")
    store.delete(media.storage_key)
    full = client.get(f"/api/v1/media/{media_id}", headers=headers)
    assert (full.status_code, full.content_type) == (404, "application/problem+json")


def test_the_sweep_passes_over_an_upload_another_transaction_holds(session):
    """Two sweeps (two workers) never wait on each other: rows one holds, the other skips."""
    with orm.Session(db.engine) as setup:
        held_id = uuid.uuid4()
        setup.execute(
            text(
                "INSERT INTO media (id, content_type, width, height, byte_size, sha256, "
                "storage_key, thumbnail_key, expires_at) VALUES (:id, 'image/jpeg', 1, 1, 1, "
                "repeat('0', 64), 'qf-test/held-full.jpg', 'qf-test/held-thumb.jpg', "
                "now() - interval '1 day')"
            ),
            {"id": held_id},
        )
        setup.commit()
    try:
        with db.engine.connect() as holder, orm.Session(db.engine) as sweeper:
            holder.execute(text("SELECT 1 FROM media WHERE id = :id FOR UPDATE"), {"id": held_id})
            sweeper.execute(text("SET lock_timeout = '2s'"))
            now = dt.datetime.now(dt.UTC)
            swept = sweeper.scalars(
                select(Media.id).where(Media.expires_at < now)
            ).all()  # what the sweep would see, were nothing held
            assert held_id in swept
            media_service.delete_expired(sweeper, now)
            assert sweeper.get(Media, held_id) is not None  # skipped, not deleted, not waited
            sweeper.rollback()
            holder.rollback()
    finally:
        with db.engine.begin() as cleanup:
            cleanup.execute(text("DELETE FROM media WHERE id = :id"), {"id": held_id})
