"""The triage queue and a tip's page, through the Flask client: jurisdiction, filters, the
map's layers, transitions and their conflicts; and who may open each console route."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from app.core.auth import has_any_role
from app.core.blueprint import access_of
from app.tips.models import Tip, TipEvent
from tests.console.conftest import csrf_of, sign_in
from tests.core.test_access import IGNORED_METHODS, sample_path
from tests.tips.conftest import NEIGHBOUR, tip_body


def submit_tip(client, headers=None, **overrides) -> str:
    answer = client.post(
        "/api/v1/tips",
        json=tip_body(**overrides),
        headers={"Idempotency-Key": str(uuid.uuid4()), **(headers or {})},
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def form_of(client, tip_id: str) -> dict[str, str]:
    html = client.get(f"/console/tips/{tip_id}").get_data(as_text=True)
    etag = html.split('name="etag" value="', 1)[1].split('"', 1)[0]
    return {"etag": etag, "csrf_token": csrf_of(client.get("/console/login"))}


def status_of(session, tip_id: str) -> str:
    session.expire_all()
    return session.scalar(sa.select(Tip.status).where(Tip.id == uuid.UUID(tip_id)))


def test_the_queue_lists_the_tips_of_the_staff_members_areas_only(staff_console):
    console, _user = staff_console
    inside, outside = submit_tip(console), submit_tip(console, at=NEIGHBOUR)
    html = console.get("/console/tips").get_data(as_text=True)
    assert inside in html and outside not in html


def test_filters_narrow_the_queue_with_the_api_list_rules(staff_console):
    console, _user = staff_console
    tip_id = submit_tip(console, category="theft")
    assert tip_id in console.get("/console/tips?status=submitted&since=24h").get_data(as_text=True)
    assert tip_id not in console.get("/console/tips?status=resolved").get_data(as_text=True)
    other = console.get("/console/tips?category=fire_hazard").get_data(as_text=True)
    assert tip_id not in other


@pytest.mark.parametrize("query", ["status=nonsense", "since=forever", "page=0", "area_id=x"])
def test_a_bad_filter_is_a_page_in_the_console_not_a_problem(staff_console, query):
    console, _user = staff_console
    answer = console.get(f"/console/tips?{query}")
    assert answer.status_code == 422
    assert answer.mimetype == "text/html"


def test_the_map_layers_come_in_the_base_maps_coordinate_system(staff_console):
    console, _user = staff_console
    tip_id = submit_tip(console)
    wgs = console.get("/console/tips.json").get_json()["items"]
    gcj = console.get("/console/tips.json?crs=gcj02").get_json()["items"]
    (w,) = [i for i in wgs if i["id"] == tip_id]
    (g,) = [i for i in gcj if i["id"] == tip_id]
    # GCJ-02 is shifted by a few hundred metres in Beijing.
    assert 0.001 < abs(g["lon"] - w["lon"]) < 0.01 and 0.0005 < abs(g["lat"] - w["lat"]) < 0.01
    assert console.get("/console/tips.json?crs=bd09").status_code == 422


def test_the_offline_base_layer_is_the_outlines_of_the_staff_members_areas(staff_console):
    console, _user = staff_console
    answer = console.get("/console/areas.geojson")
    assert answer.mimetype == "application/geo+json"
    features = answer.get_json()["features"]
    levels = {f["properties"]["level"] for f in features}
    codes = {f["properties"]["code"] for f in features}
    assert levels == {"district", "subdistrict", "community", "grid_cell"}
    assert "110105001024" in codes and "110105001025" not in codes
    # The map opens on the staff member's own areas, not on the whole district.
    own = {f["properties"]["level"] for f in features if f["properties"]["inside"]}
    assert own == {"community", "grid_cell"}


def test_a_tip_page_shows_the_tip_and_its_history(staff_console):
    console, _user = staff_console
    tip_id = submit_tip(console, description="楼道里堆满了纸箱")
    page = console.get(f"/console/tips/{tip_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "楼道里堆满了纸箱" in html and 'id="history"' in html and 'name="etag"' in html


def test_staff_of_another_community_get_a_not_found_page(staff_console, create_user, session):
    console, _user = staff_console
    tip_id = submit_tip(console)
    read_here = form_of(console, tip_id)  # the tip's version, as its own staff read it
    assert tip_id in console.get("/console/tips").get_data(as_text=True)
    other = create_user(roles=["grid_staff"], jurisdiction=["110105001025"])
    sign_in(console, other)
    answer = console.get(f"/console/tips/{tip_id}")
    assert answer.status_code == 404
    assert answer.mimetype == "text/html"
    assert tip_body()["description"] not in answer.get_data(as_text=True)
    assert tip_id not in console.get("/console/tips").get_data(as_text=True)
    moved = console.post(
        f"/console/tips/{tip_id}/transition",
        data={**read_here, "csrf_token": csrf_of(console.get("/console/tips")), "to": "triaged"},
    )
    assert moved.status_code == 404
    assert status_of(session, tip_id) == "submitted"


def test_a_transition_from_the_version_read_moves_the_tip(staff_console, session):
    console, _user = staff_console
    tip_id = submit_tip(console)
    answer = console.post(
        f"/console/tips/{tip_id}/transition", data={**form_of(console, tip_id), "to": "triaged"}
    )
    assert answer.status_code == 303
    assert status_of(session, tip_id) == "triaged"
    kinds = session.scalars(sa.select(TipEvent.to_status).where(TipEvent.tip_id == tip_id))
    assert "triaged" in list(kinds)


def test_a_tip_changed_meanwhile_is_a_clear_message_and_no_change(staff_console, session):
    console, _user = staff_console
    tip_id = submit_tip(console)
    stale = form_of(console, tip_id)
    console.post(f"/console/tips/{tip_id}/transition", data={**stale, "to": "triaged"})
    answer = console.post(f"/console/tips/{tip_id}/transition", data={**stale, "to": "rejected"})
    assert answer.status_code == 412
    assert 'id="tip-message"' in answer.get_data(as_text=True)
    assert status_of(session, tip_id) == "triaged"


def test_an_illegal_move_is_a_message_on_the_page(staff_console, session):
    console, _user = staff_console
    tip_id = submit_tip(console)
    answer = console.post(
        f"/console/tips/{tip_id}/transition", data={**form_of(console, tip_id), "to": "merged"}
    )
    assert answer.status_code == 409
    assert 'id="tip-message"' in answer.get_data(as_text=True)
    assert status_of(session, tip_id) == "submitted"


def test_a_transition_without_the_csrf_token_changes_nothing(staff_console, session):
    console, _user = staff_console
    tip_id = submit_tip(console)
    form = form_of(console, tip_id)
    answer = console.post(
        f"/console/tips/{tip_id}/transition", data={"etag": form["etag"], "to": "triaged"}
    )
    assert answer.status_code == 400
    assert status_of(session, tip_id) == "submitted"


def session_rules(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - IGNORED_METHODS):
            access = access_of(rule.endpoint, app.view_functions[rule.endpoint], method)
            if access is not None and access.kind == "session":
                yield rule, method, access


def test_every_console_page_sends_visitors_without_a_session_to_sign_in(app, console):
    checked = 0
    for rule, method, _access in session_rules(app):
        token = csrf_of(console.get("/console/login"))
        answer = console.open(sample_path(rule), method=method, data={"csrf_token": token})
        assert answer.status_code == 303, f"{method} {rule.rule}"
        assert "/console/login" in answer.headers["Location"]
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("role", ["volunteer", "police_liaison", "grid_staff"])
def test_every_console_page_refuses_roles_without_staff_rights(app, console, create_user, role):
    sign_in(
        console,
        create_user(roles=[role], jurisdiction=["110105001000"] if role != "volunteer" else []),
    )
    for rule, method, access in session_rules(app):
        assert "volunteer" not in access.roles, f"{method} {rule.rule}: the console is for staff"
        if has_any_role([role], access.roles):
            continue
        token = csrf_of(console.get("/console/login"))
        answer = console.open(sample_path(rule), method=method, data={"csrf_token": token})
        assert answer.status_code == 403, f"{role}: {method} {rule.rule}"


def test_a_note_goes_into_the_tips_history(staff_console, session):
    console, _user = staff_console
    tip_id = submit_tip(console)
    token = csrf_of(console.get("/console/login"))
    answer = console.post(
        f"/console/tips/{tip_id}/notes", data={"text": "已联系物业", "csrf_token": token}
    )
    assert answer.status_code == 303
    notes = session.scalars(
        sa.select(TipEvent.note).where(TipEvent.tip_id == tip_id, TipEvent.kind == "note")
    )
    assert list(notes) == ["已联系物业"]


def test_an_empty_note_is_a_message_and_adds_nothing(staff_console, session):
    console, _user = staff_console
    tip_id = submit_tip(console)
    token = csrf_of(console.get("/console/login"))
    answer = console.post(f"/console/tips/{tip_id}/notes", data={"text": "", "csrf_token": token})
    assert answer.status_code == 422
    assert 'id="tip-message"' in answer.get_data(as_text=True)
    count = sa.select(sa.func.count()).where(TipEvent.tip_id == tip_id, TipEvent.kind == "note")
    assert session.scalar(count) == 0


def test_a_duplicate_nearby_is_merged_from_the_tip_page(staff_console, session):
    console, _user = staff_console
    kept, duplicate = submit_tip(console), submit_tip(console)
    html = console.get(f"/console/tips/{kept}").get_data(as_text=True)
    assert f'data-merge="{duplicate}"' in html
    etag = html.split(f'action="/console/tips/{duplicate}/merge"', 1)[1]
    etag = etag.split('name="etag" value="', 1)[1].split('"', 1)[0]
    token = csrf_of(console.get("/console/login"))
    answer = console.post(
        f"/console/tips/{duplicate}/merge",
        data={"into": kept, "etag": etag, "csrf_token": token},
    )
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"/console/tips/{kept}")
    assert status_of(session, duplicate) == "merged"


def test_a_merge_from_a_stale_page_changes_nothing(staff_console, session):
    console, _user = staff_console
    kept, duplicate = submit_tip(console), submit_tip(console)
    token = csrf_of(console.get("/console/login"))
    answer = console.post(
        f"/console/tips/{duplicate}/merge",
        data={"into": kept, "etag": "stale", "csrf_token": token},
    )
    assert answer.status_code == 412
    assert status_of(session, duplicate) == "submitted"


def test_a_tip_is_assigned_to_staff_picked_from_those_covering_its_area(
    staff_console, session, create_user
):
    console, user = staff_console
    elsewhere = create_user(roles=["grid_staff"], jurisdiction=["110105001025"])
    tip_id = submit_tip(console)
    form = {**form_of(console, tip_id), "to": "triaged"}
    console.post(f"/console/tips/{tip_id}/transition", data=form)
    html = console.get(f"/console/tips/{tip_id}").get_data(as_text=True)
    assert f'value="{user.id}"' in html and f'value="{elsewhere.id}"' not in html
    form = {**form_of(console, tip_id), "to": "assigned", "assignee_id": str(user.id)}
    assert console.post(f"/console/tips/{tip_id}/transition", data=form).status_code == 303
    session.expire_all()
    tip = session.get(Tip, uuid.UUID(tip_id))
    assert (tip.status, tip.assignee_id) == ("assigned", user.id)


@pytest.mark.parametrize("assignee", ["", "not-a-uuid"])
def test_assigning_without_a_valid_assignee_is_a_message(staff_console, session, assignee):
    console, _user = staff_console
    tip_id = submit_tip(console)
    console.post(
        f"/console/tips/{tip_id}/transition", data={**form_of(console, tip_id), "to": "triaged"}
    )
    form = {**form_of(console, tip_id), "to": "assigned", "assignee_id": assignee}
    answer = console.post(f"/console/tips/{tip_id}/transition", data=form)
    assert answer.status_code == 422
    assert 'id="tip-message"' in answer.get_data(as_text=True)
    assert status_of(session, tip_id) == "triaged"


def test_the_pager_links_the_pages_around_the_current_one_with_the_list_s_filters(app):
    """Every console list's pager (console/macros.html): previous and next keep the filters."""
    with app.test_request_context("/console/tips"):
        render = app.jinja_env.from_string(
            '{% from "console/macros.html" import pager with context %}'
            "{{ pager('console.tips', page, pages, {'status': 'triaged'}) }}"
        ).render
        middle = render(page=2, pages=3)
        assert "/console/tips?page=1&amp;status=triaged" in middle
        assert "/console/tips?page=3&amp;status=triaged" in middle
        first, last = render(page=1, pages=3), render(page=3, pages=3)
        assert "page=0" not in first and "page=2" in first
        assert "page=4" not in last and "page=2" in last
        assert "pager" not in render(page=1, pages=1)
