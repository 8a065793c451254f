"""Teams, membership, and community organisations counted against the city's targets."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.teams.models import Team, TeamMember

NANLANG, BEILANG, JIANWAI = "110105001024", "110105001025", "110105001000"
CHAOWAI_COMMUNITY = "110105002024"


@pytest.fixture
def admin_of_jianwai(create_user, token_for):
    return token_for(create_user(roles=["community_admin"], jurisdiction=[JIANWAI]))


def new_team(client, headers, area_id, **overrides):
    body = {
        "name": "测试社会组织",
        "kind": "community_organisation",
        "service_type": "mutual_aid",
        "area_id": str(area_id),
        **overrides,
    }
    return client.post("/api/v1/teams", json=body, headers=headers)


def targets(client, headers, area_id):
    response = client.get(f"/api/v1/teams/targets?area_id={area_id}&page_size=100", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_targets_count_organisations_per_community(client, area, admin_of_jianwai):
    community = area(BEILANG)  # the demo has 1 organisation here (brand, filed)
    before = {t["code"]: t for t in targets(client, admin_of_jianwai, community.id)["items"]}[
        BEILANG
    ]
    assert (before["organisations"], before["brand_organisations"]) == (1, 1)
    for n in range(3):
        assert new_team(client, admin_of_jianwai, community.id, name=f"组织{n}").status_code == 201
    new_team(client, admin_of_jianwai, community.id, name="品牌", brand=True)
    new_team(
        client, admin_of_jianwai, community.id, name="已撤销", brand=True, filing_status="revoked"
    )
    new_team(
        client, admin_of_jianwai, community.id, name="巡逻队", kind="patrol_team", service_type=None
    )
    report = targets(client, admin_of_jianwai, community.id)
    (row,) = report["items"]
    assert row["urban_rural"] == "urban"
    assert row["target"] == 15
    assert row["organisations"] == 5  # the revoked one and the patrol team do not count
    assert row["short_by"] == 10
    assert (row["brand_organisations"], row["brand_short_by"]) == (2, 0)
    assert report["summary"] == {
        "communities": 1,
        "communities_short": 1,
        "communities_short_of_brand": 0,
        "organisations": 5,
    }


def test_targets_cover_a_subdistricts_communities_and_rural_targets_are_8(
    client, area, session, admin_of_jianwai
):
    community = area(BEILANG)
    community.urban_rural = "rural"
    session.commit()
    report = targets(client, admin_of_jianwai, area(JIANWAI).id)
    rows = {r["code"]: r for r in report["items"]}
    assert rows[BEILANG]["target"] == 8
    # demo: mediation (brand, filed), elderly care (filed), mutual aid (unfiled: counts too)
    assert rows[NANLANG]["organisations"] == 3
    assert report["summary"]["communities"] == len(rows) == report["total"]
    assert all(r["code"].startswith("110105001") for r in rows.values())


def test_targets_stay_inside_the_callers_jurisdiction(client, area, create_user, token_for):
    staff = token_for(create_user(roles=["grid_staff"], jurisdiction=[NANLANG]))
    report = targets(client, staff, area(JIANWAI).id)
    assert [r["code"] for r in report["items"]] == [NANLANG]


def refused(response, status):
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"


def test_teams_are_created_inside_the_jurisdiction_only(
    client, area, admin_of_jianwai, session, ledger
):
    inside = new_team(client, admin_of_jianwai, area(NANLANG).id, name="南郎互助队")
    assert inside.status_code == 201
    session.expire_all()
    assert session.get(Team, inside.get_json()["id"]).community_id == area(NANLANG).id
    ledger.mark()
    outside = new_team(client, admin_of_jianwai, area(CHAOWAI_COMMUNITY).id, name="朝外互助队")
    refused(outside, 404)
    assert ledger.changes() == []
    assert session.scalars(select(Team.id).where(Team.name == "朝外互助队")).all() == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"service_type": None},  # a community organisation needs a service type
        {"kind": "patrol_team"},  # ... and only it has one
        {"kind": "club"},
        {"leader_id": "00000000-0000-4000-8000-000000000000"},  # not an allowed field
    ],
)
def test_bad_teams_are_refused(client, area, admin_of_jianwai, overrides, ledger):
    ledger.mark()
    response = new_team(client, admin_of_jianwai, area(NANLANG).id, **overrides)
    refused(response, 422)
    assert ledger.changes() == []


@pytest.mark.parametrize("code", ["110105000000", f"{NANLANG}-G001"], ids=["district", "cell"])
def test_a_team_must_belong_to_a_community_or_subdistrict(client, area, token_for, ledger, code):
    admin = token_for("admin")
    ledger.mark()
    response = new_team(client, admin, area(code).id)
    refused(response, 422)
    assert "/area_id" in {e["pointer"] for e in response.get_json()["errors"]}
    assert ledger.changes() == []


def test_members_join_and_leave_with_their_history_kept(
    client, area, admin_of_jianwai, create_user
):
    team = new_team(client, admin_of_jianwai, area(NANLANG).id).get_json()
    alice = create_user(home=NANLANG)
    url = f"/api/v1/teams/{team['id']}/members"
    joined = client.post(
        url, json={"user_id": str(alice.id), "role": "leader"}, headers=admin_of_jianwai
    )
    assert joined.status_code == 201
    again = client.post(url, json={"user_id": str(alice.id)}, headers=admin_of_jianwai)
    assert again.status_code == 409
    assert client.get(f"/api/v1/teams/{team['id']}", headers=admin_of_jianwai).get_json()[
        "leader_id"
    ] == str(alice.id)
    members = client.get(url, headers=admin_of_jianwai).get_json()
    assert [m["user_id"] for m in members["items"]] == [str(alice.id)]
    left = client.delete(f"{url}/{alice.id}", headers=admin_of_jianwai)
    assert left.status_code == 204
    assert client.get(url, headers=admin_of_jianwai).get_json()["items"] == []
    assert (
        client.get(f"/api/v1/teams/{team['id']}", headers=admin_of_jianwai).get_json()["leader_id"]
        is None
    )
    rejoined = client.post(url, json={"user_id": str(alice.id)}, headers=admin_of_jianwai)
    assert rejoined.status_code == 201


def test_only_people_the_admin_may_see_can_be_added(
    client, area, admin_of_jianwai, create_user, session
):
    team = new_team(client, admin_of_jianwai, area(NANLANG).id).get_json()
    stranger = create_user(home=CHAOWAI_COMMUNITY)
    response = client.post(
        f"/api/v1/teams/{team['id']}/members",
        json={"user_id": str(stranger.id), "role": "leader"},
        headers=admin_of_jianwai,
    )
    refused(response, 404)
    session.expire_all()
    assert session.scalars(select(TeamMember).where(TeamMember.team_id == team["id"])).all() == []
    assert session.get(Team, team["id"]).leader_id is None


def test_filing_a_team_records_the_date_and_revoking_it_too(
    client, area, admin_of_jianwai, session
):
    team = new_team(client, admin_of_jianwai, area(NANLANG).id).get_json()
    assert (team["filed_on"], team["revoked_on"]) == (None, None)
    url = f"/api/v1/teams/{team['id']}"

    def file_as(status):
        before = dt.datetime.now(dt.UTC).date()
        answer = client.patch(url, json={"filing_status": status}, headers=admin_of_jianwai)
        assert answer.status_code == 200, answer.get_json()
        session.expire_all()
        stored = session.get(Team, team["id"])
        assert stored.filing_status == status
        return (before, dt.datetime.now(dt.UTC).date()), stored, answer.get_json()

    today, stored, filed = file_as("filed")
    assert stored.filed_on in today and stored.revoked_on is None
    assert filed["filed_on"] == stored.filed_on.isoformat()
    filed_on = stored.filed_on
    today, stored, revoked = file_as("revoked")
    assert stored.revoked_on in today
    assert stored.filed_on == filed_on  # revoking keeps when it was filed
    assert revoked["revoked_on"] == stored.revoked_on.isoformat()
    _, stored, refiled = file_as("filed")  # filed again: no longer revoked
    assert (stored.filed_on, stored.revoked_on) == (filed_on, None)
    assert refiled["revoked_on"] is None


def test_volunteers_can_browse_teams_but_not_manage_them(
    client, area, token_for, admin_of_jianwai, ledger
):
    elsewhere = new_team(client, token_for("admin"), area(CHAOWAI_COMMUNITY).id, name="朝外队")
    here = new_team(client, admin_of_jianwai, area(NANLANG).id, name="南郎队")
    volunteer = token_for("volunteer")
    listed = client.get(
        f"/api/v1/teams?area_id={area(JIANWAI).id}&page_size=100", headers=volunteer
    )
    assert listed.status_code == 200
    page = listed.get_json()
    assert page["total"] == len(page["items"]) >= 8  # the demo's teams in Jianwai, and ours
    assert {t["subdistrict_id"] for t in page["items"]} == {str(area(JIANWAI).id)}
    ids = {t["id"] for t in page["items"]}
    assert here.get_json()["id"] in ids
    assert elsewhere.get_json()["id"] not in ids
    ledger.mark()
    refused(new_team(client, volunteer, area(NANLANG).id), 403)
    targets_url = f"/api/v1/teams/targets?area_id={area(JIANWAI).id}"
    refused(client.get(targets_url, headers=volunteer), 403)
    assert ledger.changes() == []


def test_a_new_leader_replaces_the_old_one(client, area, admin_of_jianwai, create_user):
    team = new_team(client, admin_of_jianwai, area(NANLANG).id).get_json()
    url = f"/api/v1/teams/{team['id']}/members"
    first, second = create_user(home=NANLANG), create_user(home=NANLANG)
    client.post(url, json={"user_id": str(first.id), "role": "leader"}, headers=admin_of_jianwai)
    client.post(url, json={"user_id": str(second.id), "role": "leader"}, headers=admin_of_jianwai)
    roles = {
        m["user_id"]: m["role"]
        for m in client.get(url, headers=admin_of_jianwai).get_json()["items"]
    }
    assert roles == {str(first.id): "member", str(second.id): "leader"}
    client.delete(f"{url}/{first.id}", headers=admin_of_jianwai)
    assert client.get(f"/api/v1/teams/{team['id']}", headers=admin_of_jianwai).get_json()[
        "leader_id"
    ] == str(second.id)


def test_unfiling_a_team_clears_its_dates(client, area, admin_of_jianwai):
    team = new_team(client, admin_of_jianwai, area(NANLANG).id, filing_status="revoked").get_json()
    assert team["revoked_on"]
    unfiled = client.patch(
        f"/api/v1/teams/{team['id']}", json={"filing_status": "unfiled"}, headers=admin_of_jianwai
    )
    assert (unfiled.get_json()["filed_on"], unfiled.get_json()["revoked_on"]) == (None, None)
