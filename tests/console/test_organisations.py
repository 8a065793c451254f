"""The console's organisations page through the Flask client: the API's targets per
community, inside the staff member's areas only, the communities furthest from the targets
first."""

from __future__ import annotations

import re

from app.teams import service as teams_service
from tests.console.conftest import sign_in

NANLANG, BEILANG, JIANWAI = "110105001024", "110105001025", "110105001000"


def codes_on_page(html: str) -> list[str]:
    return re.findall(r'data-code="(\d+)"', html)


def test_a_communitys_staff_see_only_their_communitys_targets(staff_console, create_user):
    console, _user = staff_console
    assert codes_on_page(console.get("/console/organisations").get_data(as_text=True)) == [NANLANG]
    items = console.get("/console/organisations.json").get_json()["items"]
    assert [item["code"] for item in items] == [NANLANG]
    other = create_user(roles=["grid_staff"], jurisdiction=[BEILANG])
    sign_in(console, other)
    assert codes_on_page(console.get("/console/organisations").get_data(as_text=True)) == [BEILANG]


def test_a_subdistricts_communities_are_listed_gaps_first(console, create_user, session, area):
    admin = create_user(roles=["community_admin"], jurisdiction=[JIANWAI])
    query, _summary = teams_service.targets(session, admin, None)
    by_code = [row.code for row in session.execute(query)]
    # The first community by code meets every target: it must now come last.
    first = area(by_code[0])
    for n in range(15):
        values = {
            "name": f"达标组织{n}",
            "kind": "community_organisation",
            "service_type": "mutual_aid",
            "area_id": first.id,
            "brand": n < 2,
        }
        teams_service.create_team(session, admin, values)
    session.commit()
    sign_in(console, admin)
    html = console.get("/console/organisations").get_data(as_text=True)
    listed = codes_on_page(html)
    assert sorted(listed) == sorted(by_code)
    assert listed[-1] == first.code
    items = console.get("/console/organisations.json").get_json()["items"]
    gaps = [(item["short_by"], item["brand_short_by"]) for item in items]
    assert gaps == sorted(gaps, reverse=True)
    assert items[-1]["code"] == first.code and items[-1]["short_by"] == 0


def test_a_bad_area_is_a_page_saying_so(staff_console):
    console, _user = staff_console
    for path in ("/console/organisations", "/console/organisations.json"):
        answer = console.get(f"{path}?area_id=nonsense")
        assert answer.status_code == 422
        assert "区域" in answer.get_data(as_text=True)
    assert console.get("/console/organisations?page=0").status_code == 422
