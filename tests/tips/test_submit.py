"""Submitting tips: named and anonymous, photos, places, idempotency, bad input."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy import select, text

from app.core.idempotency import IdempotencyRecord
from app.media.models import Media
from app.tips.models import Tip, TipEvent
from tests.tips.conftest import JIANWAI, gps_exif, jpeg, upload


def _tip(session, tip_id) -> Tip:
    session.expire_all()
    return session.get(Tip, uuid.UUID(str(tip_id)))


def test_named_tip_is_linked_located_and_in_history(submit, session, create_user, token_for, area):
    volunteer = create_user()
    response = submit(headers=token_for(volunteer), police_contact_consent=True)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["status"] == "submitted"
    assert body["follow_code"] is None and body["follow_secret"] is None
    tip = _tip(session, body["id"])
    assert tip.reporter_id == volunteer.id and not tip.anonymous
    assert tip.police_contact_consent is True
    assert tip.community_id == area("110105001024").id
    assert tip.grid_cell_id is not None and tip.subdistrict_id == area("110105001000").id
    assert tip.h3_r9 is not None and tip.priority == "high"  # theft's default
    kinds = session.scalars(select(TipEvent.kind).where(TipEvent.tip_id == tip.id)).all()
    assert kinds == ["submitted"]


def test_anonymous_tip_leaves_no_trace_of_its_sender(
    client, session, create_user, token_for, caplog
):
    """With a token and anonymous: true, nothing links the tip to the account, the address,
    the user agent or the device: not the row, not its photos, not the idempotency record,
    not the logs."""
    volunteer = create_user(real_name="匿名测试人")
    headers = {
        **token_for(volunteer),
        "User-Agent": "QunfangApp/9.9 (TraceMe-UA)",
        "X-Device-Id": "DEVICE-TRACE-4242",
        "X-Forwarded-For": "198.51.100.77",
        "Idempotency-Key": str(uuid.uuid4()),
    }
    photo = upload(client, jpeg(exif=gps_exif()), headers=token_for(volunteer)).json["id"]
    with caplog.at_level(logging.DEBUG):
        response = client.post(
            "/api/v1/tips",
            json={
                "category": "drugs",
                "description": "楼道里有人交易",
                "location": {"lon": JIANWAI[0], "lat": JIANWAI[1]},
                "anonymous": True,
                "media_ids": [photo],
            },
            headers=headers,
            environ_base={"REMOTE_ADDR": "203.0.113.99"},
        )
    assert response.status_code == 201, response.json
    body = response.json
    assert body["follow_code"] and body["follow_secret"]
    tip = _tip(session, body["id"])
    assert tip.anonymous and tip.reporter_id is None and not tip.police_contact_consent

    traces = [
        str(volunteer.id),
        volunteer.phone,
        volunteer.real_name,
        "203.0.113.99",
        "198.51.100.77",
        "TraceMe-UA",
        "DEVICE-TRACE-4242",
    ]
    rows = (
        session.execute(
            text(
                "SELECT row_to_json(t)::text FROM tips t WHERE id = :id "
                "UNION ALL SELECT row_to_json(e)::text FROM tip_events e WHERE tip_id = :id "
                "UNION ALL SELECT row_to_json(m)::text FROM media m WHERE tip_id = :id"
            ),
            {"id": tip.id},
        )
        .scalars()
        .all()
    )
    assert len(rows) == 3
    records = session.scalars(select(IdempotencyRecord)).all()
    stored = [r.scope + r.body.decode() for r in records if body["id"] in r.body.decode()]
    assert stored and all(r.startswith("anonymous") for r in stored)
    assert all(body["follow_secret"] not in r for r in stored)  # the secret is never stored
    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    for trace in traces:
        for row in rows + stored:
            assert trace not in row
        assert trace not in logged
    assert session.get(Media, uuid.UUID(photo)).owner_id is None
    # Nor in any later view: staff detail, staff list, the follow view, the reporter read.
    staff = token_for(create_user(roles=["grid_staff"], jurisdiction=["110105001024"]))
    views = [
        client.get(f"/api/v1/tips/{body['id']}", headers=staff),
        client.get("/api/v1/tips?page_size=100", headers=staff),
        client.get(
            f"/api/v1/tips/follow/{body['follow_code']}",
            headers={"X-Follow-Secret": body["follow_secret"]},
        ),
    ]
    assert all(view.status_code == 200 for view in views)
    for view in views:
        for trace in traces:
            assert trace not in view.get_data(as_text=True)
    reporter = client.get(f"/api/v1/tips/{body['id']}/reporter?purpose=回访核实", headers=staff)
    assert reporter.status_code == 404
    mine = client.get("/api/v1/me/tips", headers=token_for(volunteer)).json
    assert body["id"] not in str(mine)


def test_anonymous_without_token(submit, session):
    response = submit()
    assert response.status_code == 201
    tip = _tip(session, response.json["id"])
    assert tip.anonymous and tip.reporter_id is None


def test_replay_returns_first_answer_with_its_secret_and_other_body_is_422(submit, session):
    key = str(uuid.uuid4())
    first = submit(key=key)
    again = submit(key=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json  # the secret is derived again, not read from storage
    assert (
        session.scalar(
            select(text("count(*)"))
            .select_from(Tip)
            .where(Tip.description == "两个人在撬电动车的锁")
        )
        == 1
    )
    other = submit(key=key, description="不同的内容")
    assert other.status_code == 422
    assert other.headers["Content-Type"] == "application/problem+json"


def test_photo_is_attached_once_and_only_by_its_uploader(client, submit, create_user, token_for):
    owner, other = create_user(), create_user()
    photo = upload(client, jpeg(), headers=token_for(owner)).json["id"]
    stolen = submit(headers=token_for(other), media_ids=[photo])
    assert stolen.status_code == 422
    assert stolen.json["errors"][0]["pointer"] == "/media_ids/0"
    assert submit(headers=token_for(owner), media_ids=[photo]).status_code == 201
    assert submit(headers=token_for(owner), media_ids=[photo]).status_code == 422


def test_bad_input_is_a_clear_422_and_stores_nothing(submit, session, client):
    before = session.scalar(text("SELECT count(*) FROM tips"))
    cases = [
        {"category": "no_such_thing"},
        {"description": "   "},
        {"description": "x" * 4001},
        {"location": None},
        {"location": {"lon": 200, "lat": 39.9}},
        {"occurred_at": "2999-01-01T00:00:00+08:00"},
        {"media_ids": [str(uuid.uuid4())]},
        {"media_ids": [str(uuid.uuid4()) for _ in range(7)]},
        {"reporter_id": str(uuid.uuid4())},  # not an allowed field
        {"anonymous": "true"},  # only JSON booleans decide anonymity
    ]
    for overrides in cases:
        response = submit(**overrides)
        assert response.status_code == 422, (overrides, response.json)
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json["errors"], overrides
    assert session.scalar(text("SELECT count(*) FROM tips")) == before
    plain = client.post(
        "/api/v1/tips",
        data="category=theft",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert plain.status_code == 415


def test_address_only_tip_of_a_named_reporter_goes_to_their_community(
    submit, session, create_user, token_for, area
):
    volunteer = create_user(home="110105001025")
    response = submit(headers=token_for(volunteer), location=None, address_text="建外SOHO东区")
    assert response.status_code == 201, response.json
    assert _tip(session, response.json["id"]).community_id == area("110105001025").id


def test_tip_outside_every_area_goes_to_the_nearest_district(submit, session, area):
    response = submit(at=(116.70, 39.80))  # Tongzhou, east of Chaoyang
    assert response.status_code == 201, response.json
    tip = _tip(session, response.json["id"])
    assert tip.outside_areas and tip.community_id is None
    assert tip.district_id == area("110105000000").id


def test_anonymous_submissions_are_rate_limited_by_a_keyed_hash(database_url, connection):
    """The limiter counts anonymous senders by a keyed hash of the address, not the address.
    (Incomplete bodies: they count against the limit and store nothing.)"""
    from app.extensions import limiter
    from tests.conftest import make_app

    app = make_app(database_url, TIP_RATE_LIMIT="2 per minute")
    client = app.test_client()
    statuses = []
    for _ in range(3):
        statuses.append(
            client.post(
                "/api/v1/tips",
                json={"category": "theft"},
                environ_base={"REMOTE_ADDR": "192.0.2.55"},
            ).status_code
        )
    assert statuses == [422, 422, 429]
    storage = limiter._storage  # the in-memory counters: no raw address among their keys
    keys = " ".join(map(str, getattr(storage, "storage", {}).keys()))
    assert "192.0.2.55" not in keys and "anon:" in keys


def test_a_token_that_is_no_longer_valid_is_a_401_not_an_anonymous_tip(submit, session):
    """Someone who meant to report under their name is never filed as anonymous by accident."""
    before = session.scalar(text("SELECT count(*) FROM tips"))
    response = submit(headers={"Authorization": "Bearer not.a.token"})
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert session.scalar(text("SELECT count(*) FROM tips")) == before


def test_a_poison_occurred_at_is_refused_and_staff_lists_keep_working(
    submit, staff, client, ledger
):
    """Issue 14: an anonymous tip with occurred_at 0001-01-01T00:00:00+14:00 was stored as 1 BC;
    from then on GET /tips and GET /tips/{id} answered 422 to every staff member of the place.
    Such times are refused (nothing stored); a real one is kept, and staff read it."""
    now = dt.datetime.now(dt.UTC)
    for poison in (
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "1999-12-31T23:59:59Z",
        (now + dt.timedelta(minutes=10)).isoformat(),
        now.replace(tzinfo=None).isoformat(),  # naive: no instant
    ):
        response = submit(occurred_at=poison)
        assert response.status_code == 422, (poison, response.json)
        assert response.mimetype == "application/problem+json"
        assert [e["pointer"] for e in response.json["errors"]] == ["/occurred_at"]
    assert ledger.changes() == []

    at_home = dt.timezone(dt.timedelta(hours=8))
    tip = submit(occurred_at=(now - dt.timedelta(hours=2)).astimezone(at_home).isoformat()).json
    _user, headers = staff
    listed = client.get("/api/v1/tips", headers=headers)
    assert listed.status_code == 200, listed.json
    assert tip["id"] in [t["id"] for t in listed.json["items"]]
    detail = client.get(f"/api/v1/tips/{tip['id']}", headers=headers)
    assert detail.status_code == 200
    assert detail.json["occurred_at"] == (now - dt.timedelta(hours=2)).isoformat()
