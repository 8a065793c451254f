"""Open311 publishes nothing a tipster wrote: only a public summary that staff of the tip's
jurisdiction approved (PUT /api/v1/tips/{id}/public-summary, with If-Match), or nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.core.audit import AuditEvent
from app.tips.models import Tip, TipEvent
from tests.open311.conftest import xml_items

BASE = "/open311/v2"
WORDS = "我家楼下302的王阿姨每天把垃圾堆在楼道"  # a tipster's words: a door, a neighbour's name
ADDRESS = "南郎家园12号楼3单元"
SUMMARY = "居民楼楼道堆放垃圾"


@pytest.fixture
def staff(create_user, token_for):
    return token_for(create_user(roles=["grid_staff"], jurisdiction=["110105001024"]))


def _published(client, tip_id) -> list[str]:
    """Every published form of the tip: the list and the item, JSON and XML."""
    bodies = []
    for fmt in ("json", "xml"):
        for path in ("requests", f"requests/{tip_id}"):
            response = client.get(f"{BASE}/{path}.{fmt}")
            assert response.status_code == 200
            assert str(tip_id) in response.get_data(as_text=True)
            bodies.append(response.get_data(as_text=True))
    return bodies


def _description(client, tip_id):
    (item,) = client.get(f"{BASE}/requests/{tip_id}.json").get_json()
    (xml_item,) = xml_items(
        client.get(f"{BASE}/requests/{tip_id}.xml").data, "service_requests", "request"
    )
    assert xml_item["description"] == item["description"]
    return item["description"]


def _approve(client, headers, tip_id, summary, etag=None):
    if etag is None:
        etag = client.get(f"/api/v1/tips/{tip_id}", headers=headers).headers["ETag"]
    return client.put(
        f"/api/v1/tips/{tip_id}/public-summary",
        json={"summary": summary},
        headers={**headers, "If-Match": etag},
    )


@pytest.mark.parametrize("named", [False, True], ids=["anonymous", "named"])
def test_a_tipsters_words_are_not_published_before_staff_approve_a_summary(
    client, make_tip, create_user, named
):
    reporter = create_user() if named else None
    tip = make_tip(description=WORDS, address_text=ADDRESS, reporter=reporter)
    for body in _published(client, tip.id):
        assert WORDS not in body and ADDRESS not in body
    assert _description(client, tip.id) is None


def test_an_approved_summary_is_published_alone_and_can_be_withdrawn(
    client, session, make_tip, staff
):
    tip = make_tip(description=WORDS, address_text=ADDRESS)
    before = client.get(f"/api/v1/tips/{tip.id}", headers=staff).headers["ETag"]
    approved = _approve(client, staff, tip.id, f"  {SUMMARY} ", before)
    assert approved.status_code == 200, approved.json
    assert approved.json["public_summary"] == SUMMARY and approved.json["public_summary_at"]
    assert approved.headers["ETag"] != before  # a tip edit like the others
    assert _description(client, tip.id) == SUMMARY
    for body in _published(client, tip.id):
        assert WORDS not in body and ADDRESS not in body

    withdrawn = _approve(client, staff, tip.id, None, approved.headers["ETag"])
    assert withdrawn.status_code == 200 and withdrawn.json["public_summary"] is None
    assert _description(client, tip.id) is None

    edits = session.scalars(
        select(TipEvent.data).where(TipEvent.tip_id == tip.id, TipEvent.kind == "edited")
    ).all()
    assert edits == [{"public_summary": [None, SUMMARY]}, {"public_summary": [SUMMARY, None]}]
    actions = session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.object_ids.contains([str(tip.id)]))
        .order_by(AuditEvent.at)
    ).all()
    assert actions == ["tip.public_summary_approved", "tip.public_summary_withdrawn"]


def _unchanged(session, tip_id) -> None:
    session.expire_all()
    assert session.get(Tip, tip_id).public_summary is None
    assert (
        session.scalar(
            select(func.count()).where(
                AuditEvent.object_ids.contains([str(tip_id)]),
                AuditEvent.action.like("tip.public_summary%"),
            )
        )
        == 0
    )


def test_staff_outside_the_tips_jurisdiction_cannot_approve_one(
    client, session, make_tip, create_user, token_for
):
    tip = make_tip(description=WORDS)
    outside = token_for(create_user(roles=["grid_staff"], jurisdiction=["110105002000"]))
    response = _approve(client, outside, tip.id, SUMMARY, etag='"anything"')
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    volunteer = _approve(client, token_for("volunteer"), tip.id, SUMMARY, etag='"anything"')
    assert volunteer.status_code == 403
    _unchanged(session, tip.id)
    assert _description(client, tip.id) is None


def test_an_approval_needs_the_current_etag(client, session, make_tip, staff):
    tip = make_tip()
    url = f"/api/v1/tips/{tip.id}/public-summary"
    missing = client.put(url, json={"summary": SUMMARY}, headers=staff)
    stale = client.put(url, json={"summary": SUMMARY}, headers={**staff, "If-Match": '"old"'})
    assert (missing.status_code, stale.status_code) == (428, 412)
    _unchanged(session, tip.id)


@pytest.mark.parametrize(
    "body",
    [{}, {"summary": "   "}, {"summary": "长" * 501}, {"summary": 7}, {"summary": SUMMARY, "x": 1}],
)
def test_bad_summaries_are_refused_and_change_nothing(client, session, make_tip, staff, body):
    tip = make_tip()
    etag = client.get(f"/api/v1/tips/{tip.id}", headers=staff).headers["ETag"]
    response = client.put(
        f"/api/v1/tips/{tip.id}/public-summary", json=body, headers={**staff, "If-Match": etag}
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    _unchanged(session, tip.id)


def test_tips_that_are_never_published_take_no_summary(client, session, make_tip, staff):
    confidential = make_tip(category="theft", description=WORDS)
    response = _approve(client, staff, confidential.id, SUMMARY)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    _unchanged(session, confidential.id)
