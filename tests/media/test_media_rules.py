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

from app.core.errors import Unprocessable
from app.media import service as media_service
from app.media.models import Media
from app.tips import service as tips_service
from tests.tips.conftest import JIANWAI

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
