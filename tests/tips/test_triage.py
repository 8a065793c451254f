"""Staff triage: jurisdiction, filters, the workflow, If-Match, merging; what reporters see."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select, text

from app.tips.models import Tip, TipEvent
from notifications.models import Notification
from tests.tips.conftest import NEIGHBOUR


def _read(client, headers, tip_id):
    response = client.get(f"/api/v1/tips/{tip_id}", headers=headers)
    assert response.status_code == 200, response.json
    return response


def _move(client, headers, tip_id, etag, **body):
    return client.post(
        f"/api/v1/tips/{tip_id}/transitions", json=body, headers={**headers, "If-Match": etag}
    )


def test_staff_see_only_their_jurisdiction(client, submit, staff, create_user, token_for):
    _user, headers = staff
    inside = submit().json["id"]
    outside = submit(at=NEIGHBOUR).json["id"]
    listed = client.get("/api/v1/tips?page_size=100", headers=headers).json
    ids = {item["id"] for item in listed["items"]}
    assert inside in ids and outside not in ids
    assert client.get(f"/api/v1/tips/{outside}", headers=headers).status_code == 404
    other = token_for(create_user(roles=["grid_staff"], jurisdiction=["110105001025"]))
    assert client.get(f"/api/v1/tips/{inside}", headers=other).status_code == 404
    assert client.get(f"/api/v1/tips/{outside}", headers=other).status_code == 200
    volunteer = token_for("volunteer")
    assert client.get("/api/v1/tips", headers=volunteer).status_code == 403
    assert client.get(f"/api/v1/tips/{inside}", headers=volunteer).status_code == 403
    liaison = token_for("police_liaison")
    assert client.get(f"/api/v1/tips/{inside}", headers=liaison).status_code == 403


def test_volunteer_cannot_read_anothers_tip(client, submit, create_user, token_for):
    owner, other = create_user(), create_user()
    tip_id = submit(headers=token_for(owner)).json["id"]
    assert client.get(f"/api/v1/me/tips/{tip_id}", headers=token_for(owner)).status_code == 200
    assert client.get(f"/api/v1/me/tips/{tip_id}", headers=token_for(other)).status_code == 404
    mine = client.get("/api/v1/me/tips", headers=token_for(other)).json
    assert mine["total"] == 0


def test_list_filters_and_stable_order(client, submit, staff, session):
    _user, headers = staff
    theft = submit(category="theft").json["id"]
    fire = submit(category="fire_hazard", description="楼道堆放杂物堵塞通道").json["id"]
    # One test transaction gives both the same now(): make the fire tip the later one.
    session.execute(
        text("UPDATE tips SET created_at = created_at + interval '1 minute' WHERE id = :id"),
        {"id": fire},
    )

    def ids(query):
        response = client.get(f"/api/v1/tips?{query}&page_size=100", headers=headers)
        assert response.status_code == 200, response.json
        return [item["id"] for item in response.json["items"]]

    assert fire in ids("category=fire_hazard") and theft not in ids("category=fire_hazard")
    assert fire in ids("priority=urgent") and theft not in ids("priority=urgent")
    assert {theft, fire} <= set(ids("category=theft&category=fire_hazard"))
    assert fire in ids("q=杂物") and theft not in ids("q=杂物")
    assert theft in ids("bbox=116.45,39.90,116.46,39.92")
    assert theft not in ids("bbox=116.30,39.80,116.31,39.81")
    assert ids("status=resolved") == [] or theft not in ids("status=resolved")
    order = ids("")
    assert order.index(fire) < order.index(theft)  # newest first
    page = client.get("/api/v1/tips?page_size=1", headers=headers).json
    assert len(page["items"]) == 1 and page["total"] >= 2
    bad = client.get("/api/v1/tips?status=lost&page_size=1000", headers=headers)
    assert bad.status_code == 422 and bad.headers["Content-Type"] == "application/problem+json"


def test_geojson_list(client, submit, staff):
    _user, headers = staff
    tip_id = submit().json["id"]
    response = client.get("/api/v1/tips", headers={**headers, "Accept": "application/geo+json"})
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    collection = response.get_json(force=True)
    assert collection["type"] == "FeatureCollection"
    feature = next(f for f in collection["features"] if f["id"] == tip_id)
    assert feature["geometry"]["type"] == "Point"
    assert feature["properties"]["category"] == "theft"


def test_workflow_with_if_match_history_and_notifications(
    client, submit, staff, session, create_user, token_for
):
    user, headers = staff
    reporter = create_user()
    tip_id = submit(headers=token_for(reporter)).json["id"]
    first = _read(client, headers, tip_id)
    etag = first.headers["ETag"]

    missing = client.post(
        f"/api/v1/tips/{tip_id}/transitions", json={"to": "triaged"}, headers=headers
    )
    assert missing.status_code == 428
    illegal = _move(client, headers, tip_id, etag, to="resolved")
    assert illegal.status_code == 409 and "triaged" in illegal.json["detail"]

    moved = _move(client, headers, tip_id, etag, to="triaged", note="已核实", public=True)
    assert moved.status_code == 200, moved.json
    assert moved.json["status"] == "triaged" and moved.headers["ETag"] != etag
    stale = _move(client, headers, tip_id, etag, to="in_progress")
    assert stale.status_code == 412

    etag = moved.headers["ETag"]
    no_assignee = _move(client, headers, tip_id, etag, to="assigned")
    assert no_assignee.status_code == 422
    volunteer = create_user()
    not_staff = _move(client, headers, tip_id, etag, to="assigned", assignee_id=str(volunteer.id))
    assert not_staff.status_code == 422
    assigned = _move(client, headers, tip_id, etag, to="assigned", assignee_id=str(user.id))
    assert assigned.status_code == 200 and assigned.json["assignee_id"] == str(user.id)

    detail = _read(client, headers, tip_id).json
    kinds = [(e["kind"], e["to_status"]) for e in detail["history"]]
    assert kinds == [
        ("submitted", "submitted"),
        ("transition", "triaged"),
        ("transition", "assigned"),
    ]
    assert detail["history"][1]["actor_id"] == str(user.id)

    notes = session.scalars(select(Notification).where(Notification.user_id == reporter.id)).all()
    assert [n.data["status"] for n in notes] == ["triaged", "assigned"]
    assert notes[0].data["note"] == "已核实" and notes[1].data["note"] is None
    feed = client.get("/api/v1/me/notifications", headers=token_for(reporter)).json
    assert feed["total"] == 2
    own = client.get(f"/api/v1/me/tips/{tip_id}", headers=token_for(reporter)).json
    assert own["status"] == "assigned"
    assert [h["note"] for h in own["history"] if h["note"]] == ["已核实"]  # public notes only


def test_reporter_data_is_a_separate_read(client, submit, staff, create_user, token_for):
    _user, headers = staff
    reporter = create_user()
    named = submit(headers=token_for(reporter), police_contact_consent=True).json["id"]
    anonymous = submit().json["id"]
    detail = _read(client, headers, named).json
    assert reporter.phone not in str(detail) and str(reporter.id) not in str(detail)
    shown = client.get(f"/api/v1/tips/{named}/reporter?purpose=回访核实", headers=headers).json
    assert shown["phone"] == reporter.phone and shown["police_contact_consent"] is True
    assert (
        client.get(
            f"/api/v1/tips/{anonymous}/reporter?purpose=回访核实", headers=headers
        ).status_code
        == 404
    )


def test_merge_keeps_follow_codes_and_reporters_working(
    client, submit, staff, session, create_user, token_for
):
    _user, headers = staff
    kept = submit().json["id"]
    duplicate = submit().json
    reporter = create_user()
    named_duplicate = submit(headers=token_for(reporter)).json["id"]

    detail = _read(client, headers, kept).json
    candidates = {c["id"] for c in detail["duplicates"]["candidates"]}
    assert {duplicate["id"], named_duplicate} <= candidates

    for tip_id in (duplicate["id"], named_duplicate):
        etag = _read(client, headers, tip_id).headers["ETag"]
        merged = client.post(
            f"/api/v1/tips/{tip_id}/merge",
            json={"into": kept},
            headers={**headers, "If-Match": etag},
        )
        assert merged.status_code == 200, merged.json
        assert merged.json["status"] == "merged"
    again = _read(client, headers, duplicate["id"])
    twice = client.post(
        f"/api/v1/tips/{duplicate['id']}/merge",
        json={"into": kept},
        headers={**headers, "If-Match": again.headers["ETag"]},
    )
    assert twice.status_code == 409

    etag = _read(client, headers, kept).headers["ETag"]
    _move(client, headers, kept, etag, to="triaged", note="合并处理", public=True)
    follow = client.get(
        f"/api/v1/tips/follow/{duplicate['follow_code']}",
        headers={"X-Follow-Secret": duplicate["follow_secret"]},
    )
    assert follow.status_code == 200
    assert follow.json["status"] == "triaged" and follow.json["merged"] is True
    assert "合并处理" in [h["note"] for h in follow.json["history"]]
    told = session.scalars(select(Notification).where(Notification.user_id == reporter.id)).all()
    assert [n.subject_id for n in told] == [uuid.UUID(named_duplicate)]
    merged_ids = {m["id"] for m in _read(client, headers, kept).json["duplicates"]["merged"]}
    assert merged_ids == {duplicate["id"], named_duplicate}


def test_follow_view_and_added_information(client, submit, session):
    created = submit().json
    code, secret = created["follow_code"], created["follow_secret"]
    wrong = client.get(f"/api/v1/tips/follow/{code}", headers={"X-Follow-Secret": "A" * 24})
    unknown = client.get("/api/v1/tips/follow/ZZZZZZZZZZ", headers={"X-Follow-Secret": secret})
    no_secret = client.get(f"/api/v1/tips/follow/{code}")
    assert wrong.status_code == unknown.status_code == no_secret.status_code == 404
    assert wrong.json["detail"] == unknown.json["detail"]

    view = client.get(f"/api/v1/tips/follow/{code}", headers={"X-Follow-Secret": secret})
    assert view.status_code == 200 and view.json["status"] == "submitted"
    assert "description" not in view.json
    added = client.post(
        f"/api/v1/tips/follow/{code}/information",
        json={"note": "车牌号京A12345"},
        headers={"X-Follow-Secret": secret, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert added.status_code == 201, added.json
    events = session.scalars(
        select(TipEvent).where(TipEvent.tip_id == uuid.UUID(created["id"]))
    ).all()
    assert [e.kind for e in events] == ["submitted", "info_added"]
    assert events[1].actor_id is None and events[1].note == "车牌号京A12345"


def test_closed_tip_takes_no_more_information(client, submit, staff):
    _user, headers = staff
    created = submit().json
    etag = _read(client, headers, created["id"]).headers["ETag"]
    assert _move(client, headers, created["id"], etag, to="rejected").status_code == 200
    added = client.post(
        f"/api/v1/tips/follow/{created['follow_code']}/information",
        json={"note": "还有"},
        headers={"X-Follow-Secret": created["follow_secret"]},
    )
    assert added.status_code == 409


def test_nearby_answers_in_bands_without_ids_and_people_categories_need_a_token(
    client, submit, token_for
):
    submit(description="秘密细节")
    submit(category="fire_hazard", description="楼道堆物")
    near = client.get("/api/v1/tips/nearby?lon=116.4554&lat=39.9097&category=fire_hazard")
    assert near.status_code == 200
    items = near.json["items"]
    assert 1 <= len(items) <= 5
    assert set(items[0]) == {"category", "status", "hour", "within_m"}
    assert items[0]["within_m"] in (50, 100, 250) and items[0]["hour"].endswith(":00:00+00:00")
    assert "楼道堆物" not in near.get_data(as_text=True)
    far = client.get("/api/v1/tips/nearby?lon=116.30&lat=39.80&category=fire_hazard").json
    assert far["items"] == []
    anonymous = client.get("/api/v1/tips/nearby?lon=116.4554&lat=39.9097&category=theft")
    assert anonymous.status_code == 401
    assert anonymous.headers["Content-Type"] == "application/problem+json"
    signed_in = client.get(
        "/api/v1/tips/nearby?lon=116.4554&lat=39.9097&category=theft",
        headers=token_for("volunteer"),
    )
    assert signed_in.status_code == 200 and signed_in.json["items"]
    assert "秘密细节" not in signed_in.get_data(as_text=True)
    unknown = client.get("/api/v1/tips/nearby?lon=116.4554&lat=39.9097&category=nope_nope")
    assert unknown.status_code == 422


def test_if_match_star_is_refused(client, submit, staff, session):
    _user, headers = staff
    tip_id = submit().json["id"]
    star = _move(client, headers, tip_id, "*", to="triaged")
    assert star.status_code == 428
    assert star.mimetype == "application/problem+json"
    session.expire_all()
    assert session.get(Tip, uuid.UUID(tip_id)).status == "submitted"


def test_duplicates_never_show_tips_outside_the_jurisdiction(client, submit, staff):
    _user, headers = staff
    inside = submit().json["id"]
    # Just across the boundary, in the neighbouring community: a candidate by place and time.
    outside = submit(at=NEIGHBOUR).json["id"]
    detail = _read(client, headers, inside).json
    shown = json.dumps(detail["duplicates"])
    assert outside not in shown


def test_merged_reporters_see_staff_lines_not_each_others_words(client, submit, staff):
    _user, headers = staff
    kept = submit().json
    dup = submit().json
    added = client.post(
        f"/api/v1/tips/follow/{kept['follow_code']}/information",
        json={"note": "我是3号楼502的王先生"},
        headers={"X-Follow-Secret": kept["follow_secret"]},
    )
    assert added.status_code == 201
    etag = _read(client, headers, dup["id"]).headers["ETag"]
    merged = client.post(
        f"/api/v1/tips/{dup['id']}/merge",
        json={"into": kept["id"]},
        headers={**headers, "If-Match": etag},
    )
    assert merged.status_code == 200
    etag = _read(client, headers, kept["id"]).headers["ETag"]
    _move(client, headers, kept["id"], etag, to="triaged", note="已派人查看", public=True)
    view = json.dumps(
        client.get(
            f"/api/v1/tips/follow/{dup['follow_code']}",
            headers={"X-Follow-Secret": dup["follow_secret"]},
        ).json,
        ensure_ascii=False,
    )
    assert "已派人查看" in view and "王先生" not in view


def test_closed_tips_are_not_merged(client, submit, staff, session):
    _user, headers = staff
    kept = submit().json["id"]
    closed = submit().json["id"]
    etag = _read(client, headers, closed).headers["ETag"]
    etag = _move(client, headers, closed, etag, to="rejected").headers["ETag"]
    refused = client.post(
        f"/api/v1/tips/{closed}/merge", json={"into": kept}, headers={**headers, "If-Match": etag}
    )
    assert refused.status_code == 409
    assert refused.mimetype == "application/problem+json"
    # Nothing moved: the closed tip is still rejected and merged into nothing, no history.
    session.expire_all()
    tip = session.get(Tip, uuid.UUID(closed))
    assert (tip.status, tip.merged_into_id) == ("rejected", None)
    merged = session.scalars(
        select(TipEvent).where(
            TipEvent.tip_id.in_([uuid.UUID(kept), uuid.UUID(closed)]), TipEvent.kind == "merged"
        )
    ).all()
    assert merged == []
    assert _read(client, headers, closed).headers["ETag"] == etag


def test_categories_are_data_admins_manage(client, token_for, submit):
    listed = client.get("/api/v1/tip-categories").json["items"]
    codes = [c["code"] for c in listed]
    assert codes[0] == "suspicious_person_vehicle" and "other" in codes and len(codes) == 10
    admin = token_for("admin")
    created = client.post(
        "/api/v1/tip-categories",
        json={"code": "noise", "name": "噪音扰民", "name_en": "Noise", "duplicate_radius_m": 80},
        headers=admin,
    )
    assert created.status_code == 201, created.json
    assert created.json["default_priority"] == "normal"
    assert (
        client.post(
            "/api/v1/tip-categories",
            json={"code": "noise", "name": "x", "name_en": "x"},
            headers=admin,
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/api/v1/tip-categories",
            json={"code": "x1", "name": "x", "name_en": "x"},
            headers=token_for("community_admin"),
        ).status_code
        == 403
    )
    retired = client.patch("/api/v1/tip-categories/noise", json={"active": False}, headers=admin)
    assert retired.status_code == 200 and retired.json["active"] is False
    assert "noise" not in [c["code"] for c in client.get("/api/v1/tip-categories").json["items"]]
    assert submit(category="noise").status_code == 422


def test_my_tips_page_costs_the_same_queries_for_2_or_12_tips(
    client, submit, create_user, token_for, count_queries
):
    def page_queries(count):
        reporter = create_user()
        headers = token_for(reporter)
        for _ in range(count):
            assert submit(headers=headers).status_code == 201
        with count_queries() as statements:
            page = client.get("/api/v1/me/tips?page_size=20", headers=headers)
        assert page.status_code == 200 and page.json["total"] == count
        assert all(item["history"] for item in page.json["items"])
        return len(statements)

    assert page_queries(2) == page_queries(12)
