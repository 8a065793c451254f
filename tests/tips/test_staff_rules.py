"""Rules of staff work on tips that no test stated before (issue #22): the staff edit of a tip
(PATCH), merging only inside the jurisdiction, the list's `from`/`to` bounds, a tip's photos
being its own, and staff holding no area seeing no tip and no task."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, text

from app.tips.models import Tip, TipEvent
from tests.patrols.conftest import HOME
from tests.tips.conftest import NEIGHBOUR, jpeg, upload

PROBLEM = "application/problem+json"


def _read(client, headers, tip_id):
    response = client.get(f"/api/v1/tips/{tip_id}", headers=headers)
    assert response.status_code == 200, response.json
    return response


def _patch(client, headers, tip_id, body, etag=None):
    if etag is not None:
        headers = {**headers, "If-Match": etag}
    return client.patch(f"/api/v1/tips/{tip_id}", json=body, headers=headers)


def _stored(session, tip_id) -> tuple[str, str, int]:
    session.expire_all()
    tip = session.get(Tip, uuid.UUID(tip_id))
    return tip.category_code, tip.priority, tip.version


# -- PATCH /tips/{id} ---------------------------------------------------------------------------


def test_a_staff_edit_is_stored_and_written_in_the_history(client, submit, staff, session):
    user, headers = staff
    tip_id = submit(category="theft").json["id"]
    before = _read(client, headers, tip_id)
    category, priority, version = _stored(session, tip_id)
    assert category == "theft"
    new = "low" if priority != "low" else "urgent"

    edited = _patch(
        client,
        headers,
        tip_id,
        {"category": "fire_hazard", "priority": new},
        before.headers["ETag"],
    )
    assert edited.status_code == 200, edited.json
    assert (edited.json["category"], edited.json["priority"]) == ("fire_hazard", new)
    assert _stored(session, tip_id) == ("fire_hazard", new, version + 1)
    # The new ETag is the stored version's, and the old one is stale now.
    assert edited.headers["ETag"] == _read(client, headers, tip_id).headers["ETag"]
    assert edited.headers["ETag"] != before.headers["ETag"]

    events = session.scalars(
        select(TipEvent).where(TipEvent.tip_id == uuid.UUID(tip_id), TipEvent.kind == "edited")
    ).all()
    assert len(events) == 1
    assert events[0].actor_id == user.id
    assert events[0].data == {"category": ["theft", "fire_hazard"], "priority": [priority, new]}
    history = _read(client, headers, tip_id).json["history"]
    assert [e["data"] for e in history if e["kind"] == "edited"] == [events[0].data]


def test_an_edit_that_changes_nothing_writes_no_history(client, submit, staff, session):
    _user, headers = staff
    tip_id = submit(category="theft").json["id"]
    etag = _read(client, headers, tip_id).headers["ETag"]
    priority = _stored(session, tip_id)[1]
    same = _patch(client, headers, tip_id, {"category": "theft", "priority": priority}, etag)
    assert same.status_code == 200
    assert same.headers["ETag"] == etag
    kinds = session.scalars(select(TipEvent.kind).where(TipEvent.tip_id == uuid.UUID(tip_id)))
    assert "edited" not in set(kinds)


def test_an_edit_needs_the_current_etag(client, submit, staff, session):
    _user, headers = staff
    tip_id = submit().json["id"]
    stored = _stored(session, tip_id)
    missing = _patch(client, headers, tip_id, {"priority": "urgent"})
    assert missing.status_code == 428 and missing.mimetype == PROBLEM
    stale = _patch(client, headers, tip_id, {"priority": "urgent"}, '"stale"')
    assert stale.status_code == 412 and stale.mimetype == PROBLEM
    assert _stored(session, tip_id) == stored
    # An ETag that was current before another edit is stale after it.
    etag = _read(client, headers, tip_id).headers["ETag"]
    first, second = ("high", "low") if stored[1] != "high" else ("low", "urgent")
    assert _patch(client, headers, tip_id, {"priority": first}, etag).status_code == 200
    again = _patch(client, headers, tip_id, {"priority": second}, etag)
    assert again.status_code == 412
    assert _stored(session, tip_id)[1] == first


def test_an_edit_outside_the_jurisdiction_is_404_and_changes_nothing(
    client, submit, staff, session, create_user, token_for
):
    _user, headers = staff
    outside = submit(at=NEIGHBOUR).json["id"]
    owner = token_for(create_user(roles=["grid_staff"], jurisdiction=["110105001025"]))
    etag = _read(client, owner, outside).headers["ETag"]
    stored = _stored(session, outside)
    refused = _patch(client, headers, outside, {"priority": "urgent"}, etag)
    assert refused.status_code == 404 and refused.mimetype == PROBLEM
    assert _stored(session, outside) == stored
    volunteer = _patch(client, token_for("volunteer"), outside, {"priority": "urgent"}, etag)
    assert volunteer.status_code == 403
    assert _stored(session, outside) == stored


def test_bad_edits_are_422_problems_and_change_nothing(client, submit, staff, session):
    _user, headers = staff
    tip_id = submit().json["id"]
    etag = _read(client, headers, tip_id).headers["ETag"]
    stored = _stored(session, tip_id)
    for body, pointer in (
        ({"priority": "whenever"}, "/priority"),
        ({"category": "no_such_category"}, "/category"),
        ({"category": "fire_hazard", "priority": "whenever"}, "/priority"),
        ({"status": "resolved"}, "/status"),
    ):
        response = _patch(client, headers, tip_id, body, etag)
        assert response.status_code == 422, body
        assert response.mimetype == PROBLEM
        assert pointer in {e["pointer"] for e in response.json["errors"]}, response.json
        assert _stored(session, tip_id) == stored, body
    kinds = session.scalars(select(TipEvent.kind).where(TipEvent.tip_id == uuid.UUID(tip_id)))
    assert "edited" not in set(kinds)


def test_a_retired_category_is_refused_in_an_edit(client, submit, staff, session, token_for):
    _user, headers = staff
    tip_id = submit(category="theft").json["id"]
    admin = token_for("admin")
    created = client.post(
        "/api/v1/tip-categories",
        json={"code": "noise", "name": "噪音扰民", "name_en": "Noise"},
        headers=admin,
    )
    assert created.status_code == 201, created.json
    retired = client.patch("/api/v1/tip-categories/noise", json={"active": False}, headers=admin)
    assert retired.status_code == 200
    etag = _read(client, headers, tip_id).headers["ETag"]
    refused = _patch(client, headers, tip_id, {"category": "noise"}, etag)
    assert refused.status_code == 422 and refused.mimetype == PROBLEM
    assert _stored(session, tip_id)[0] == "theft"


# -- merging -------------------------------------------------------------------------------------


def test_a_tip_is_not_merged_into_a_tip_outside_the_jurisdiction(
    client, submit, staff, session, create_user, token_for
):
    _user, headers = staff
    mine = submit().json["id"]
    theirs = submit(at=NEIGHBOUR).json["id"]
    etag = _read(client, headers, mine).headers["ETag"]
    refused = client.post(
        f"/api/v1/tips/{mine}/merge", json={"into": theirs}, headers={**headers, "If-Match": etag}
    )
    assert refused.status_code == 422 and refused.mimetype == PROBLEM
    assert refused.json["errors"][0]["pointer"] == "/into"
    # The answer is the same as for a tip that does not exist: nothing is confirmed.
    ghost = client.post(
        f"/api/v1/tips/{mine}/merge",
        json={"into": str(uuid.uuid4())},
        headers={**headers, "If-Match": etag},
    )
    assert ghost.json["errors"] == refused.json["errors"]
    session.expire_all()
    assert session.get(Tip, uuid.UUID(mine)).status == "submitted"
    assert session.get(Tip, uuid.UUID(mine)).merged_into_id is None
    merged_events = session.scalars(
        select(TipEvent).where(
            TipEvent.tip_id.in_([uuid.UUID(mine), uuid.UUID(theirs)]), TipEvent.kind == "merged"
        )
    ).all()
    assert merged_events == []
    # Staff of both communities may merge them.
    both = token_for(
        create_user(roles=["grid_staff"], jurisdiction=["110105001024", "110105001025"])
    )
    merged = client.post(
        f"/api/v1/tips/{mine}/merge", json={"into": theirs}, headers={**both, "If-Match": etag}
    )
    assert merged.status_code == 200, merged.json
    assert merged.json["merged_into_id"] == theirs


# -- the list's period ---------------------------------------------------------------------------


def test_the_list_period_includes_from_and_excludes_to(client, submit, staff, session):
    _user, headers = staff
    start = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
    made = {}
    for offset in (-1, 0, 1, 2):
        tip_id = submit().json["id"]
        made[offset] = tip_id
        session.execute(
            text("UPDATE tips SET created_at = :at WHERE id = :id"),
            {"at": start + dt.timedelta(hours=offset), "id": tip_id},
        )
    session.commit()

    def listed(**period) -> set[str]:
        query = "&".join(f"{k}={v.isoformat().replace('+', '%2B')}" for k, v in period.items())
        response = client.get(f"/api/v1/tips?page_size=100&{query}", headers=headers)
        assert response.status_code == 200, response.json
        return {item["id"] for item in response.json["items"]} & set(made.values())

    end = start + dt.timedelta(hours=2)
    assert listed(**{"from": start, "to": end}) == {made[0], made[1]}
    assert listed(**{"from": start}) == {made[0], made[1], made[2]}
    assert listed(to=end) == {made[-1], made[0], made[1]}
    one_microsecond = dt.timedelta(microseconds=1)
    assert listed(**{"from": start + one_microsecond, "to": end + one_microsecond}) == {
        made[1],
        made[2],
    }


# -- photos --------------------------------------------------------------------------------------


def test_a_tips_detail_shows_its_own_photos_only(client, submit, staff, create_user, token_for):
    _user, headers = staff
    reporter = token_for(create_user())
    photos = [upload(client, jpeg(), headers=reporter).json["id"] for _ in range(3)]
    first = submit(headers=reporter, media_ids=[photos[0]]).json["id"]
    second = submit(headers=reporter, media_ids=photos[1:]).json["id"]
    without = submit().json["id"]
    shown = {
        tip_id: sorted(m["id"] for m in _read(client, headers, tip_id).json["media"])
        for tip_id in (first, second, without)
    }
    # (Uploads in one test transaction share a created_at, so their order is the ids'.)
    assert shown == {first: [photos[0]], second: sorted(photos[1:]), without: []}


# -- staff with no area --------------------------------------------------------------------------


def test_staff_with_no_area_list_no_tip_and_no_task(
    client, submit, create_user, token_for, session
):
    tips = [submit().json["id"], submit(at=NEIGHBOUR).json["id"]]
    task = client.post(
        "/api/v1/tasks",
        json={
            "title": "协助疏导",
            "kind": "event_support",
            "location": {"lon": HOME[0], "lat": HOME[1]},
            "radius_m": 500,
            "ends_at": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat(),
            "needed": 1,
            "targeting": {"mode": "radius"},
        },
        headers=token_for("admin"),
    )
    assert task.status_code == 201, task.json
    admin = token_for("admin")
    assert set(tips) <= {
        t["id"] for t in client.get("/api/v1/tips?page_size=100", headers=admin).json["items"]
    }
    for role in ("grid_staff", "community_admin"):
        nobody = token_for(create_user(roles=[role], jurisdiction=[]))
        listed_tips = client.get("/api/v1/tips?page_size=100", headers=nobody)
        assert listed_tips.status_code == 200
        assert (listed_tips.json["items"], listed_tips.json["total"]) == ([], 0), role
        listed_tasks = client.get("/api/v1/tasks?page_size=100", headers=nobody)
        assert listed_tasks.status_code == 200
        assert (listed_tasks.json["items"], listed_tasks.json["total"]) == ([], 0), role
        for tip_id in tips:
            assert client.get(f"/api/v1/tips/{tip_id}", headers=nobody).status_code == 404
        task_detail = client.get(f"/api/v1/tasks/{task.json['id']}", headers=nobody)
        assert task_detail.status_code == 404


# -- assignment ----------------------------------------------------------------------------------


def test_a_tip_is_assigned_only_to_active_grid_staff_covering_its_area(
    client, submit, staff, session, create_user
):
    """Each condition alone refuses the assignee: a disabled account, an account without the
    grid-staff role, staff of another area; and the refusal changes nothing."""
    _user, headers = staff
    tip_id = submit().json["id"]
    etag = _read(client, headers, tip_id).headers["ETag"]
    moved = client.post(
        f"/api/v1/tips/{tip_id}/transitions",
        json={"to": "triaged"},
        headers={**headers, "If-Match": etag},
    )
    assert moved.status_code == 200, moved.json
    etag = moved.headers["ETag"]
    here = ["110105001024"]
    refused = {
        "disabled": create_user(roles=["grid_staff"], jurisdiction=here, status="disabled"),
        "no role": create_user(roles=["volunteer", "police_liaison"], jurisdiction=here),
        "elsewhere": create_user(roles=["grid_staff"], jurisdiction=["110105001025"]),
    }
    for why, candidate in refused.items():
        answer = client.post(
            f"/api/v1/tips/{tip_id}/transitions",
            json={"to": "assigned", "assignee_id": str(candidate.id)},
            headers={**headers, "If-Match": etag},
        )
        assert answer.status_code == 422, why
        assert answer.content_type == PROBLEM
        session.expire_all()
        tip = session.get(Tip, uuid.UUID(tip_id))
        assert (tip.status, tip.assignee_id) == ("triaged", None), why
    fit = create_user(roles=["grid_staff"], jurisdiction=here)
    answer = client.post(
        f"/api/v1/tips/{tip_id}/transitions",
        json={"to": "assigned", "assignee_id": str(fit.id)},
        headers={**headers, "If-Match": etag},
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["assignee_id"] == str(fit.id)
    # The history says whom: the assignment's line names the assignee, the others no one.
    lines = session.scalars(select(TipEvent).where(TipEvent.tip_id == uuid.UUID(tip_id))).all()
    moves = {e.to_status: e.data for e in lines if e.kind == "transition"}
    assert moves == {"triaged": {}, "assigned": {"assignee_id": str(fit.id)}}


def test_the_list_filters_anonymous_and_named_tips(client, submit, staff, create_user, token_for):
    _user, headers = staff
    named = submit(headers=token_for(create_user())).json["id"]
    anonymous = submit().json["id"]
    listed = {}
    for value in ("true", "false"):
        answer = client.get(f"/api/v1/tips?anonymous={value}&page_size=100", headers=headers)
        assert answer.status_code == 200, answer.json
        listed[value] = {t["id"] for t in answer.json["items"]}
    assert anonymous in listed["true"] and named not in listed["true"]
    assert named in listed["false"] and anonymous not in listed["false"]
